/**
 * Where airlock reaches an AWS service: `aws.endpoints[service]` when configured (moto,
 * dynalite, a VPC endpoint), else the public regional endpoint of that service.
 */
const SERVICE_HOST_PREFIX: Readonly<Record<string, string>> = {
  // The SigV4 signing name and the host prefix differ for a few services.
  'rds-db': 'rds',
  logs: 'logs',
};

/** The DNS suffix of the partition a region belongs to. */
export function dnsSuffix(region: string): string {
  if (region.startsWith('cn-')) return 'amazonaws.com.cn';
  if (region.startsWith('us-iso-')) return 'c2s.ic.gov';
  if (region.startsWith('us-isob-')) return 'sc2s.sgov.gov';
  return 'amazonaws.com';
}

/** The partition of a region, for ARNs. */
export function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  if (region.startsWith('us-iso-')) return 'aws-iso';
  if (region.startsWith('us-isob-')) return 'aws-iso-b';
  return 'aws';
}

export function resolveEndpoint(
  overrides: Partial<Record<string, string>>,
  service: string,
  region: string,
): string {
  const configured = overrides[service];
  if (configured !== undefined && configured !== '') return configured.replace(/\/+$/, '');
  const prefix = SERVICE_HOST_PREFIX[service] ?? service;
  return `https://${prefix}.${region}.${dnsSuffix(region)}`;
}
