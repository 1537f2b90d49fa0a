/**
 * What airlock logs in upstream with, for both ways in (the wire path's connectUpstream and
 * the MCP tool): static levels' passwords and `verify-full` CA bundles, read once at start
 * (a missing variable fails the start, not the first agent's connection), and the password
 * callback a connection calls: an RDS IAM token for the login's user, the grant role's own
 * password, or the static level's.
 */
import { readFileSync } from 'node:fs';
import { AirlockError, ErrorCodes } from '../../core/errors.ts';
import type { Grant } from '../../core/plugin.ts';
import type { PostgresContext, PostgresResource, PostgresScope } from './config.ts';
import type { UpstreamLogin } from './login.ts';
import { rdsIamToken } from './rds-iam.ts';

export interface UpstreamSecrets {
  /** Passwords of `auth.type: password` resources by `passwordKey(resource, level)`. */
  readonly passwords: ReadonlyMap<string, string>;
  /** CA bundles of `tls: verify-full` resources, by resource name. */
  readonly caBundles: ReadonlyMap<string, string>;
}

export function passwordKey(resource: string, level: string): string {
  return `${resource}\0${level}`;
}

export function readUpstreamSecrets(resources: ReadonlyMap<string, PostgresResource>, env: NodeJS.ProcessEnv = process.env): UpstreamSecrets {
  const passwords = new Map<string, string>();
  const caBundles = new Map<string, string>();
  for (const [name, r] of resources) {
    if (r.auth.type === 'password') {
      for (const [level, a] of Object.entries(r.access)) {
        const variable = a.passwordEnv ?? r.auth.passwordEnv;
        const pw = env[variable];
        if (pw === undefined || pw === '') throw new Error(`resources.${name}: environment variable ${variable} (password of access level ${level}) is not set`);
        passwords.set(passwordKey(name, level), pw);
      }
    }
    if (r.caFile) caBundles.set(name, readFileSync(r.caFile, 'utf8'));
  }
  return { passwords, caBundles };
}

/** The password callback of one upstream login of `grant` as `login`. */
export function upstreamPassword(ctx: PostgresContext, secrets: UpstreamSecrets, resource: PostgresResource, grant: Grant<PostgresScope>, login: UpstreamLogin): () => Promise<string> {
  return async () => {
    if (resource.auth.type === 'rds-iam') {
      return await rdsIamToken(ctx.aws, { resource: grant.resource, host: resource.host, port: resource.port, user: login.user, region: resource.region ?? ctx.aws.region });
    }
    if (login.kind === 'provisioned') {
      if (login.password === undefined) throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, `grant ${grant.id} has no role password`);
      return login.password;
    }
    const pw = secrets.passwords.get(passwordKey(grant.resource, grant.access));
    if (pw === undefined) throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, `the password for ${grant.resource} is not set`);
    return pw;
  };
}
