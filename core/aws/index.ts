/**
 * The shared AWS layer: airlock's own credentials (provider chain, per-grant roles),
 * outbound SigV4, endpoints, and inbound SigV4 verification of grant-issued keys. The
 * gateway builds one per process and hands each AWS-facing plugin an `AwsContext` bound to
 * that plugin's grants, and each sink the credential-only part.
 */
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import type { Logger } from 'pino';
import type { AwsContext, Grant, GrantAuthenticator, SinkContext } from '../plugin.ts';
import { CredentialSource, type RoleBinding } from './credentials.ts';
import { resolveEndpoint } from './endpoints.ts';
import { createInboundVerifier } from './sigv4-inbound.ts';
import { Signer } from './signing.ts';

export interface AwsLayerOptions {
  /** `aws.region`: the default region. */
  region: string;
  /** `aws.endpoints`: per-service endpoint overrides. */
  endpoints: Partial<Record<string, string>>;
  /** Per resource name: the role to assume per grant, and the resource's region. */
  roles: ReadonlyMap<string, RoleBinding>;
  log: Logger;
  /** Largest inbound body verifyInbound accepts (default 1 MiB). */
  maxBodyBytes?: number | undefined;
  /** Replaces the standard provider chain (tests, embedded dev). */
  credentials?: AwsCredentialIdentityProvider | undefined;
  /** Clock, for tests. */
  now?: (() => number) | undefined;
}

export interface AwsLayer {
  /** The AwsContext of core/plugin.ts for one plugin; verifyInbound uses that plugin's grants. */
  forPlugin<Scope>(grants: GrantAuthenticator<Scope>): AwsContext<Scope>;
  /** For sinks: airlock's own credentials (no grant). */
  forSinks(): SinkContext['aws'];
  /** AssumeRole calls made so far (metrics, tests). */
  assumeRoleCalls(): number;
  /** Drop cached role sessions of a grant (on revocation). */
  forgetGrant(grantId: string): void;
  close(): Promise<void>;
}

export function createAwsLayer(opts: AwsLayerOptions): AwsLayer {
  const endpoint = (service: string, region: string): string => resolveEndpoint(opts.endpoints, service, region);
  const credentialSource = new CredentialSource({
    region: opts.region,
    roles: opts.roles,
    stsEndpoint: (region) => endpoint('sts', region),
    log: opts.log,
    baseCredentials: opts.credentials,
    now: opts.now,
  });
  const signer = new Signer();
  const regionOf = (grant: Grant<unknown>): string => opts.roles.get(grant.resource)?.region ?? opts.region;

  return {
    forPlugin<Scope>(grants: GrantAuthenticator<Scope>): AwsContext<Scope> {
      return {
        region: opts.region,
        endpoint,
        credentials: (request) => credentialSource.forRequest(request),
        sign: (request, o) => signer.sign(request, o),
        presign: (request, o) => signer.presign(request, o),
        verifyInbound: createInboundVerifier({ grants, regionOf, maxBodyBytes: opts.maxBodyBytes, now: opts.now }),
      };
    },
    forSinks() {
      return {
        region: opts.region,
        endpoint,
        credentials: () => credentialSource.baseCredentials(),
      };
    },
    assumeRoleCalls: () => credentialSource.assumeRoleCalls,
    forgetGrant: (grantId) => credentialSource.forgetGrant(grantId),
    async close() {
      credentialSource.close();
      signer.clear();
    },
  };
}

export type { RoleBinding } from './credentials.ts';
