/**
 * Where a cluster's API server is and which CA vouches for it: from config (endpoint +
 * caFile) or from EKS `DescribeCluster`, signed with airlock's identity. The TLS agent
 * trusts exactly that CA, so a token is never sent to a server that cannot prove it is the
 * cluster.
 */
import { readFile } from 'node:fs/promises';
import { HttpRequest } from '@smithy/protocol-http';
import { Agent, request } from 'undici';
import { AirlockError, ErrorCodes } from '../../core/errors.ts';
import type { AwsContext } from '../../core/plugin.ts';
import type { EksResource } from './config.ts';

export interface ClusterTarget {
  /** https://host[:port] with no trailing slash or path. */
  origin: string;
  /** Path prefix of the endpoint ('' for EKS). */
  basePath: string;
  caPem: string;
  agent: Agent;
}

/** DescribeCluster answers are re-read after this long (endpoints rarely move). */
const DESCRIBE_TTL_MS = 60 * 60_000;

export class ClusterResolver {
  private cached: { target: ClusterTarget; at: number } | undefined;
  private pending: Promise<ClusterTarget> | undefined;

  constructor(
    private readonly resourceName: string,
    private readonly resource: EksResource,
    private readonly aws: AwsContext,
    private readonly now: () => number = Date.now,
  ) {}

  async target(): Promise<ClusterTarget> {
    const fromConfig = this.resource.endpoint !== undefined;
    if (this.cached && (fromConfig || this.now() - this.cached.at < DESCRIBE_TTL_MS)) return this.cached.target;
    this.pending ??= this.resolve()
      .then((target) => {
        const old = this.cached?.target.agent;
        this.cached = { target, at: this.now() };
        if (old && old !== target.agent) void old.close().catch(() => {});
        return target;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }

  async close(): Promise<void> {
    await this.cached?.target.agent.close().catch(() => {});
    this.cached = undefined;
  }

  private async resolve(): Promise<ClusterTarget> {
    if (this.resource.endpoint !== undefined && this.resource.caFile !== undefined) {
      let caPem: string;
      try {
        caPem = await readFile(this.resource.caFile, 'utf8');
      } catch (e) {
        throw new AirlockError(ErrorCodes.INTERNAL, `resources.${this.resourceName}.caFile: cannot read ${this.resource.caFile}: ${(e as Error).message}`);
      }
      return makeTarget(this.resource.endpoint, caPem);
    }
    const described = await describeCluster(this.aws, this.resourceName, this.resource);
    const caPem = Buffer.from(described.caData, 'base64').toString('utf8');
    if (!/^-----BEGIN CERTIFICATE-----/m.test(caPem)) {
      throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, `DescribeCluster ${this.resource.cluster}: certificateAuthority.data is not a PEM certificate`);
    }
    return makeTarget(described.endpoint, caPem);
  }
}

/** EKS DescribeCluster, signed with airlock's identity: the endpoint and the base64 CA data. */
export async function describeCluster(aws: AwsContext, resourceName: string, resource: EksResource): Promise<{ endpoint: string; caData: string }> {
  const region = resource.region;
  const base = new URL(aws.endpoint('eks', region));
  const path = `${base.pathname.replace(/\/+$/, '')}/clusters/${encodeURIComponent(resource.cluster)}`;
  const credentials = await aws.credentials({ resource: resourceName });
  const signed = await aws.sign(
    new HttpRequest({
      method: 'GET',
      protocol: base.protocol,
      hostname: base.hostname,
      ...(base.port ? { port: Number(base.port) } : {}),
      path,
      headers: { host: base.host, accept: 'application/json' },
    }),
    { service: 'eks', region, credentials },
  );
  let status: number;
  let text: string;
  try {
    const res = await request(`${base.origin}${path}`, { method: 'GET', headers: signed.headers, headersTimeout: 15_000, bodyTimeout: 15_000 });
    status = res.statusCode;
    text = await res.body.text();
  } catch (e) {
    throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, `DescribeCluster ${resource.cluster}: ${(e as Error).message}`);
  }
  if (status !== 200) {
    throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, `DescribeCluster ${resource.cluster} answered ${status}: ${text.slice(0, 300)}`);
  }
  let body: { cluster?: { endpoint?: unknown; certificateAuthority?: { data?: unknown } } };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, `DescribeCluster ${resource.cluster}: not JSON`);
  }
  const endpoint = body.cluster?.endpoint;
  const caData = body.cluster?.certificateAuthority?.data;
  if (typeof endpoint !== 'string' || !endpoint.startsWith('https://') || typeof caData !== 'string' || caData === '') {
    throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, `DescribeCluster ${resource.cluster}: the cluster has no https endpoint or CA yet`);
  }
  return { endpoint, caData };
}

function makeTarget(endpoint: string, caPem: string): ClusterTarget {
  const url = new URL(endpoint);
  if (url.protocol !== 'https:') throw new AirlockError(ErrorCodes.INTERNAL, `cluster endpoint ${endpoint} is not https`);
  return {
    origin: url.origin,
    basePath: url.pathname.replace(/\/+$/, ''),
    caPem,
    agent: new Agent({
      // Only this CA: the system store does not vouch for an EKS cluster.
      connect: { ca: caPem, rejectUnauthorized: true },
      // Watches and `logs -f` stay open and quiet for long stretches.
      bodyTimeout: 0,
      headersTimeout: 60_000,
      keepAliveTimeout: 30_000,
    }),
  };
}
