/**
 * Entry point of per-grant roles for the plugin: build a `RoleProvisioner` for a configured
 * resource (the admin logs in with `provision.passwordEnv`, or with an RDS IAM token under
 * `auth: rds-iam`), and the lifecycle glue the plugin instance's hooks call.
 */
import { readFileSync } from 'node:fs';
import type { AwsContext } from '../../../core/plugin.ts';
import type { PostgresResource } from '../config.ts';
import { rdsIamToken } from '../rds-iam.ts';
import { RoleProvisioner, type ProvisionerOptions } from './provisioner.ts';
import { isProvisionedScope } from './scope.ts';

export { RoleProvisioner, ProvisionError, type ProvisionedRole, type ProvisionGrant, type RoleDirectory, type RoleRecordType } from './provisioner.ts';
export { sharedRoleDirectory } from './role-directory.ts';
export { isProvisionedScope, resolvePostgresScope, type ProvisionedScope, type StaticScope, type PostgresScope } from './scope.ts';
export { roleNameFor } from './role-names.ts';

export interface ProvisionerDeps {
  readonly env: NodeJS.ProcessEnv;
  readonly aws: Pick<AwsContext, 'presign' | 'credentials' | 'region'>;
  readonly record: ProvisionerOptions['record'];
  readonly directory?: ProvisionerOptions['directory'];
  readonly defaultConnectionLimit?: number;
}

/** A provisioner for `resource`, or undefined when it has no provisioned level. */
export function provisionerForResource(resourceName: string, resource: PostgresResource, deps: ProvisionerDeps): RoleProvisioner | undefined {
  if (!resource.provision || Object.keys(resource.provisioned).length === 0) return undefined;
  const admin = resource.provision;
  const rdsIam = resource.auth.type === 'rds-iam';
  let password: string | (() => Promise<string>);
  if (rdsIam) {
    const region = resource.region ?? deps.aws.region;
    password = () => rdsIamToken(deps.aws, { resource: resourceName, host: resource.host, port: resource.port, user: admin.user, region });
  } else {
    const value = admin.passwordEnv ? deps.env[admin.passwordEnv] : undefined;
    if (!value) throw new Error(`resources.${resourceName}.provision.passwordEnv: environment variable ${admin.passwordEnv ?? '(none)'} is not set`);
    password = value;
  }
  return new RoleProvisioner({
    admin: {
      host: resource.host,
      port: resource.port,
      database: resource.database,
      user: admin.user,
      password,
      tls: resource.tls,
      ca: resource.caFile ? readFileSync(resource.caFile, 'utf8') : undefined,
      connectTimeoutMs: resource.connectTimeoutMs,
    },
    rdsIam,
    record: deps.record,
    directory: deps.directory,
    ...(deps.defaultConnectionLimit ? { defaultConnectionLimit: deps.defaultConnectionLimit } : {}),
  });
}

/** Whether a grant of this plugin needs a role of its own (its scope came from a provisioned level). */
export function needsRole(grant: { readonly scope: Readonly<Record<string, unknown>> }): boolean {
  return isProvisionedScope(grant.scope);
}
