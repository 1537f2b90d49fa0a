/**
 * The RoleDirectory of per-grant roles on the plugin's shared state: one entry per grant
 * (`role/<grant id>`), expiring with the grant, so a grant activated on one replica can log in
 * through any other. The entry holds the role's password: the store is as sensitive as the
 * issuer key it already holds (docs/operations.md).
 */
import type { JsonValue, PluginState } from '../../../core/plugin.ts';
import type { Privilege } from '../config.ts';
import type { ProvisionedRole, RoleDirectory } from './provisioner.ts';

const keyOf = (grantId: string): string => `role/${grantId}`;

export function sharedRoleDirectory(state: PluginState): RoleDirectory {
  return {
    async publish(grantId, role, expiresAt) {
      const value: JsonValue = { role: role.role, password: role.password ?? null, tables: [...role.tables], privileges: [...role.privileges] };
      await state.put(keyOf(grantId), value, { expiresAt });
    },
    async lookup(grantId) {
      return parseEntry(await state.get(keyOf(grantId)));
    },
    async remove(grantId) {
      await state.delete(keyOf(grantId));
    },
  };
}

/** Fail closed: an entry of another shape is treated as no role. */
function parseEntry(value: JsonValue | undefined): ProvisionedRole | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { role, password, tables, privileges } = value;
  if (typeof role !== 'string' || !(typeof password === 'string' || password === null)) return undefined;
  if (!isStringList(tables) || !isStringList(privileges)) return undefined;
  return { role, password: password ?? undefined, tables, privileges: privileges as Privilege[] };
}

function isStringList(v: JsonValue | undefined): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}
