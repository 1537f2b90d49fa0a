/**
 * The effective scope of a Postgres grant. A static level is exactly its database role and
 * takes no scope; a provisioned level may be narrowed with `scope: {tables: [...]}`, each
 * table (or `schema.*`) within the level's patterns. Patterns are resolved against the
 * catalogue only when the grant becomes active (the provisioner does it).
 */
import { AirlockError, ErrorCodes } from '../../../core/errors.ts';
import type { PostgresResource, Privilege } from '../config.ts';
import { formatTableName, parseTableName, withinPatterns, type TableName } from './table-names.ts';

export interface StaticScope {
  readonly database: string;
  readonly user: string;
}

export interface ProvisionedScope {
  readonly database: string;
  readonly privileges: readonly Privilege[];
  /** Canonical `schema.table` / `schema.*` texts, resolved at activation. */
  readonly tables: readonly string[];
}

export type PostgresScope = StaticScope | ProvisionedScope;

export function isProvisionedScope(scope: Readonly<Record<string, unknown>>): boolean {
  return Array.isArray(scope.tables) && Array.isArray(scope.privileges);
}

export function resolvePostgresScope(resource: PostgresResource, access: string, requested: Record<string, unknown> | undefined): StaticScope | ProvisionedScope {
  const asked = requested !== undefined && Object.keys(requested).length > 0 ? requested : undefined;
  if (Object.hasOwn(resource.access, access)) {
    // A static grant is exactly its access level's database role: there is nothing narrower to ask for.
    if (asked) throw new AirlockError(ErrorCodes.BAD_REQUEST, `postgres grants of static level "${access}" take no scope (got ${Object.keys(asked).join(', ')}): the access level's database role is the scope`);
    return { database: resource.database, user: resource.access[access]!.user };
  }
  const level = Object.hasOwn(resource.provisioned, access) ? resource.provisioned[access] : undefined;
  if (!level) throw new AirlockError(ErrorCodes.BAD_REQUEST, `unknown access level "${access}"`);
  const tables = asked ? narrowTables(asked, level.tables, access) : level.tables;
  return { database: resource.database, privileges: level.privileges, tables: tables.map(formatTableName) };
}

function narrowTables(asked: Record<string, unknown>, patterns: readonly TableName[], access: string): TableName[] {
  for (const k of Object.keys(asked)) {
    if (k !== 'tables') throw new AirlockError(ErrorCodes.BAD_REQUEST, `unknown scope key '${k}' (postgres scopes take: tables)`);
  }
  const list = asked.tables;
  if (!Array.isArray(list) || list.length === 0 || list.length > 1000 || !list.every((t): t is string => typeof t === 'string' && t.length <= 200)) {
    throw new AirlockError(ErrorCodes.BAD_REQUEST, 'scope.tables must be a non-empty list of table names (schema.table, table = public.table, or schema.*)');
  }
  const names: TableName[] = [];
  const outside: string[] = [];
  for (const text of list) {
    const t = parseTableName(text, { allowWildcard: true });
    if (typeof t === 'string') throw new AirlockError(ErrorCodes.BAD_REQUEST, `scope.tables: ${t}`);
    if (!withinPatterns(t, patterns)) outside.push(formatTableName(t));
    names.push(t);
  }
  if (outside.length > 0) throw new AirlockError(ErrorCodes.OUT_OF_SCOPE, `table ${outside.join(', ')} is outside access level "${access}" (${patterns.map(formatTableName).join(', ')})`);
  return [...new Map(names.map((t) => [formatTableName(t), t])).values()];
}
