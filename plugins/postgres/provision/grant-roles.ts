/**
 * The grant lifecycle glue for per-grant roles, one object for the plugin instance to hold:
 * `onGrantActive` / `onGrantEnded` are the contract v2 hooks' bodies, `sweep` is the start-up
 * pass over `ctx.grants.listActive()`, `credentials` is what the front door logs in with.
 * Grants of static levels pass through untouched.
 */
import type { Grant } from '../../../core/plugin.ts';
import type { PostgresResource } from '../config.ts';
import { provisionerForResource, type ProvisionerDeps } from './index.ts';
import type { ProvisionedRole, RoleProvisioner, RoleRecordType } from './provisioner.ts';
import { isProvisionedScope } from './scope.ts';

export interface GrantRolesDeps extends Omit<ProvisionerDeps, 'record'> {
  /** Audit hook: the lead maps it to ctx.audit.record({type, grant, resource, data, outcome: 'ok'}). */
  readonly record: (type: RoleRecordType, resource: string, data: Record<string, unknown>) => void;
}

export class GrantRoles {
  private readonly byResource = new Map<string, RoleProvisioner>();

  constructor(resources: ReadonlyMap<string, PostgresResource>, deps: GrantRolesDeps) {
    for (const [name, resource] of resources) {
      const p = provisionerForResource(name, resource, { ...deps, record: (type, data) => deps.record(type, name, data) });
      if (p) this.byResource.set(name, p);
    }
  }

  private provisionerOf(grant: Pick<Grant, 'resource' | 'scope'>): RoleProvisioner | undefined {
    return isProvisionedScope(grant.scope) ? this.byResource.get(grant.resource) : undefined;
  }

  /** Throws when the role cannot be made: the grant must then not become active. */
  async onGrantActive(grant: Grant, opts: { connectionLimit?: number } = {}): Promise<void> {
    const p = this.provisionerOf(grant);
    if (!isProvisionedScope(grant.scope)) return;
    if (!p) throw new Error(`resource ${grant.resource} has no provisioner for grant ${grant.id}`);
    await p.activate(grant, opts);
  }

  async onGrantEnded(grant: Grant, reason: string): Promise<void> {
    await this.provisionerOf(grant)?.end(grant, reason);
  }

  /** Start-up: drop leftovers, then (re)activate the active grants (their roles exist with their published passwords). */
  async sweep(active: readonly Grant[]): Promise<void> {
    for (const [name, p] of this.byResource) {
      const mine = active.filter((g) => g.resource === name && isProvisionedScope(g.scope));
      await p.sweep(mine.map((g) => g.id));
      for (const g of mine) await p.activate(g);
    }
  }

  /** The role a session of `grant` logs in as, or undefined for a static level (or a role not made yet). */
  async credentials(grant: Pick<Grant, 'id' | 'resource' | 'scope'>): Promise<ProvisionedRole | undefined> {
    return await this.provisionerOf(grant)?.credentials(grant.id);
  }

  async close(): Promise<void> {
    await Promise.all([...this.byResource.values()].map((p) => p.close()));
  }
}
