/**
 * A minimal AwsContext for unit tests of the EKS plugin, built on @smithy/signature-v4 with
 * a fixed key pair (the end-to-end tests use the gateway's real AWS layer instead).
 */
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';
import type { HttpRequest } from '@smithy/protocol-http';
import type { AwsCredentialIdentity } from '@smithy/types';
import type { AwsContext } from '../../core/plugin.ts';

const Sha256 = Hash.bind(null, 'sha256');

export function fakeAws<Scope>(keys: AwsCredentialIdentity, region = 'us-east-1'): AwsContext<Scope> {
  const signer = (service: string, r: string): SignatureV4 => new SignatureV4({ service, region: r, credentials: keys, sha256: Sha256 });
  return {
    region,
    endpoint: (service, r) => `https://${service}.${r}.amazonaws.com`,
    credentials: async () => keys,
    sign: async (request: HttpRequest, opts) => (await signer(opts.service, opts.region).sign(request)) as HttpRequest,
    presign: async (request: HttpRequest, opts) =>
      (await new SignatureV4({ service: opts.service, region: opts.region, credentials: opts.credentials, sha256: Sha256 }).presign(request, {
        expiresIn: opts.expiresIn,
        ...(opts.signingDate ? { signingDate: opts.signingDate } : {}),
      })) as HttpRequest,
    verifyInbound: async () => {
      throw new Error('not used by the eks plugin');
    },
  };
}
