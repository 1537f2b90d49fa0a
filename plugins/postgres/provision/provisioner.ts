/**
 * A database role per grant (SPEC "Postgres: a role per grant"). `activate` creates
 * `airlock_<grant id>` with exactly the grant's privileges on exactly its tables (resolved
 * against the catalogue now) and returns what the connect path logs in with; `end`
 * terminates the role's backends and drops what it owns and the role; `sweep` drops every
 * grant role whose grant is no longer active (after a crash). The admin connection is
 * postgres.js: it has the pool, TLS, a password callback for IAM tokens and bound
 * parameters, and the front door's hand-written upstream code is built for relaying a
 * client, not for issuing the provisioner's own statements.
 */
import postgres, { type Sql, type TransactionSql } from 'postgres';
import type { Privilege } from '../config.ts';
import { resolveTables } from './catalogue.ts';
import { GRANT_ROLE_PATTERN, roleMarker, roleNameFor } from './role-names.ts';
import { newRolePassword, scramVerifier } from './scram-verifier.ts';
import { dropStatements, prepareDropStatements, privilegeStatements, roleStatements } from './statements.ts';
import { formatTableName, parseTableName, type TableName } from './table-names.ts';

export interface AdminConnection {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** A password, or a callback minting one per connection (an RDS IAM token). */
  readonly password: string | (() => Promise<string>);
  readonly tls: 'disable' | 'require' | 'verify-full';
  /** PEM bundle for verify-full. */
  readonly ca?: string | undefined;
  readonly connectTimeoutMs?: number | undefined;
}

export type RoleRecordType = 'pg.role.created' | 'pg.role.dropped';

/**
 * Where every replica finds a grant's role: the replica that activates a grant makes the role
 * and publishes how to log in as it; a session of that grant on another replica looks it up.
 * (The plugin backs it with its shared state; kept an interface so this module knows nothing
 * of core.)
 */
export interface RoleDirectory {
  publish(grantId: string, role: ProvisionedRole, expiresAt: number): Promise<void>;
  lookup(grantId: string): Promise<ProvisionedRole | undefined>;
  remove(grantId: string): Promise<void>;
}

export interface ProvisionerOptions {
  readonly admin: AdminConnection;
  /** Grant roles log in with RDS IAM (membership of rds_iam, no password). */
  readonly rdsIam: boolean;
  /** Audit hook, kept a callback so this module knows nothing of core's recorder. */
  readonly record: (type: RoleRecordType, data: Record<string, unknown>) => void;
  /** Shared with the other replicas; without one, roles are known to this process only. */
  readonly directory?: RoleDirectory | undefined;
  /** CONNECTION LIMIT when activate is not told one (policies[].maxSessions default). */
  readonly defaultConnectionLimit?: number;
  /** How long end() waits for each terminated backend to exit (ms). */
  readonly terminateWaitMs?: number;
}

/** The part of a grant the provisioner reads (a provisioned scope: see scope.ts). */
export interface ProvisionGrant {
  readonly id: string;
  readonly expiresAt: string | null;
  readonly scope: Readonly<Record<string, unknown>>;
}

export interface ProvisionedRole {
  readonly role: string;
  /** Only with password login; never recorded or logged. */
  readonly password: string | undefined;
  /** The tables granted, resolved (`schema.table`). */
  readonly tables: readonly string[];
  readonly privileges: readonly Privilege[];
}

export class ProvisionError extends Error {}

/**
 * GRANT and REVOKE rewrite the object's ACL without locking it: two at once on the same table
 * fail with "tuple concurrently updated". One transaction-scoped advisory lock serializes this
 * DDL across every provisioner on the database (every replica too); the statements are short.
 */
async function lockGrants(tx: TransactionSql): Promise<void> {
  await tx`select pg_advisory_xact_lock(hashtext('airlock.provision'))`;
}

function scopeOf(grant: ProvisionGrant): { privileges: Privilege[]; tables: TableName[] } {
  const { privileges, tables } = grant.scope;
  if (!Array.isArray(privileges) || !Array.isArray(tables) || privileges.length === 0) throw new ProvisionError(`grant ${grant.id} has no provisioned scope`);
  const names = tables.map((t) => {
    const n = typeof t === 'string' ? parseTableName(t, { allowWildcard: true }) : 'not a string';
    if (typeof n === 'string') throw new ProvisionError(`grant ${grant.id}: scope table ${String(t)}: ${n}`);
    return n;
  });
  return { privileges: privileges as Privilege[], tables: names };
}

export class RoleProvisioner {
  private readonly sql: Sql;
  private readonly active = new Map<string, ProvisionedRole>();
  /** One operation at a time per grant: an end() arriving during activate() waits for it. */
  private readonly queue = new Map<string, Promise<unknown>>();

  constructor(private readonly options: ProvisionerOptions) {
    const a = options.admin;
    this.sql = postgres({
      host: a.host,
      port: a.port,
      database: a.database,
      username: a.user,
      password: a.password,
      ssl: a.tls === 'disable' ? false : a.tls === 'require' ? { rejectUnauthorized: false } : { ca: a.ca, rejectUnauthorized: true },
      max: 2,
      idle_timeout: 60,
      connect_timeout: Math.ceil((a.connectTimeoutMs ?? 10_000) / 1000),
      prepare: false,
      onnotice: () => {},
    });
  }

  private serial<T>(grantId: string, op: () => Promise<T>): Promise<T> {
    const prev = this.queue.get(grantId) ?? Promise.resolve();
    const next = prev.then(op, op);
    const tail = next.catch(() => undefined);
    this.queue.set(grantId, tail);
    void tail.then(() => {
      if (this.queue.get(grantId) === tail) this.queue.delete(grantId);
    });
    return next;
  }

  /** What the connect path logs in with: made here, or published by the replica that made it. */
  async credentials(grantId: string): Promise<ProvisionedRole | undefined> {
    const known = this.active.get(grantId);
    if (known !== undefined || this.options.directory === undefined) return known;
    // Not cached: one store read per session opened here for a grant made elsewhere, and
    // nothing to go stale when the grant ends on another replica.
    return await this.options.directory.lookup(grantId);
  }

  activate(grant: ProvisionGrant, opts: { connectionLimit?: number } = {}): Promise<ProvisionedRole> {
    return this.serial(grant.id, () => this.create(grant, opts.connectionLimit ?? this.options.defaultConnectionLimit ?? 10));
  }

  private async create(grant: ProvisionGrant, connectionLimit: number): Promise<ProvisionedRole> {
    const role = roleNameFor(grant.id);
    if (!grant.expiresAt) throw new ProvisionError(`grant ${grant.id} has no expiry yet (pending): no role before it is active`);
    const { privileges, tables } = scopeOf(grant);
    // A role already published (this grant re-activated after a restart, on any replica)
    // keeps its password, so the sessions other replicas open with it go on working.
    const published = this.active.get(grant.id) ?? (await this.options.directory?.lookup(grant.id));
    const password = this.options.rdsIam ? undefined : (published?.password ?? newRolePassword());
    const resolved = await this.sql.begin(async (tx) => {
      await lockGrants(tx);
      const found = await resolveTables(tx, tables);
      const [{ exists } = { exists: false }] = await tx<{ exists: boolean }[]>`select exists (select 1 from pg_roles where rolname = ${role}) as exists`;
      const spec = { role, connectionLimit, validUntil: grant.expiresAt!, passwordVerifier: password && scramVerifier(password), marker: roleMarker(this.options.admin.database) };
      const statements = [...(await roleStatements(tx, spec, exists)), ...(await privilegeStatements(tx, role, privileges, found))];
      await tx.unsafe(statements.join(';\n')).simple();
      return found;
    });
    const result: ProvisionedRole = { role, password, privileges, tables: resolved.tables.map((t) => formatTableName({ schema: t.schema, table: t.table })) };
    await this.options.directory?.publish(grant.id, result, Date.parse(grant.expiresAt));
    this.active.set(grant.id, result);
    this.options.record('pg.role.created', { role, tables: result.tables, privileges, grant: grant.id });
    return result;
  }

  end(grant: Pick<ProvisionGrant, 'id'>, reason: string): Promise<boolean> {
    return this.serial(grant.id, () => this.drop(roleNameFor(grant.id), reason, grant.id));
  }

  /** Returns whether a role was dropped (false when there was none). */
  private async drop(role: string, reason: string, grantId: string | undefined): Promise<boolean> {
    if (grantId) {
      this.active.delete(grantId);
      // Best effort: the entry expires with the grant, and no replica looks it up for a grant
      // that is no longer active. A store outage must not keep the role itself from going.
      await this.options.directory?.remove(grantId).catch(() => undefined);
    }
    const [{ exists } = { exists: false }] = await this.sql<{ exists: boolean }[]>`select exists (select 1 from pg_roles where rolname = ${role}) as exists`;
    if (!exists) return false;
    // No new logins first, then end the live ones, then drop: a session cannot slip in between.
    await this.sql.begin(async (tx) => {
      await lockGrants(tx);
      await tx.unsafe((await prepareDropStatements(tx, role)).join(';\n')).simple();
    });
    const wait = this.options.terminateWaitMs ?? 1000;
    await this.sql`select pg_terminate_backend(pid, ${wait}::int8) from pg_stat_activity where usename = ${role} and pid <> pg_backend_pid()`;
    await this.sql.begin(async (tx) => {
      await lockGrants(tx);
      await tx.unsafe((await dropStatements(tx, role)).join(';\n')).simple();
    });
    this.options.record('pg.role.dropped', { role, reason, ...(grantId ? { grant: grantId } : {}) });
    return true;
  }

  /** Drop every grant role of this database whose grant is not in `activeGrantIds`. Returns the roles dropped. */
  async sweep(activeGrantIds: Iterable<string>): Promise<string[]> {
    const keep = new Set([...activeGrantIds].map((id) => roleNameFor(id)));
    const rows = await this.sql<{ rolname: string }[]>`
      select rolname from pg_roles
       where rolname ~ ${GRANT_ROLE_PATTERN} and shobj_description(oid, 'pg_authid') = ${roleMarker(this.options.admin.database)}
       order by 1`;
    const dropped: string[] = [];
    for (const { rolname } of rows) {
      if (keep.has(rolname)) continue;
      const grantId = rolname.slice('airlock_'.length).toUpperCase();
      if (await this.serial(grantId, () => this.drop(rolname, 'sweep', grantId))) dropped.push(rolname);
    }
    return dropped;
  }

  async close(): Promise<void> {
    await this.sql.end({ timeout: 5 });
  }
}
