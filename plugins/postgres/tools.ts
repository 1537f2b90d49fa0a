/**
 * MCP tool of the Postgres plugin: `query_postgres {sql, params?, max_rows?}` runs one
 * statement as a session of the grant: `session.opened`, `pg.query` (before the statement
 * leaves airlock), `pg.result`, `session.closed`, the same records a psql session writes,
 * logged in upstream as the same role a psql session of the grant would be (login.ts: the
 * static level's user, or the grant's own role; a password or an RDS IAM token), with the
 * same guardrail rules. postgres.js is the client: it parses rows and
 * column types, and its cancel request stops a running statement when the grant ends.
 */
import postgres from 'postgres';
import { z } from 'zod';
import { AirlockError, ErrorCodes, isAirlockError, type AuditRecorder, type Grant, type Session, type ToolContribution, type ToolResult } from '../../core/public.ts';
import type { PostgresContext, PostgresResource, PostgresScope } from './config.ts';
import { upstreamPassword, type UpstreamSecrets } from './upstream-secrets.ts';
import { decideQuery } from './guard/index.ts';
import { loginOf, type UpstreamLogin } from './login.ts';
import type { GrantRoles } from './provision/grant-roles.ts';

/** Longest SQL text kept in a record, as for psql sessions. */
const MAX_RECORDED_SQL = 64 * 1024;

/** Names of the built-in types a result is likely to have (pg_type.oid is stable for these). */
const TYPE_NAMES: Readonly<Record<number, string>> = {
  16: 'bool', 17: 'bytea', 18: 'char', 19: 'name', 20: 'int8', 21: 'int2', 23: 'int4', 25: 'text', 26: 'oid', 114: 'json', 142: 'xml',
  700: 'float4', 701: 'float8', 1042: 'bpchar', 1043: 'varchar', 1082: 'date', 1083: 'time', 1114: 'timestamp', 1184: 'timestamptz',
  1186: 'interval', 1700: 'numeric', 2950: 'uuid', 3802: 'jsonb', 869: 'inet', 1000: 'bool[]', 1007: 'int4[]', 1009: 'text[]', 1016: 'int8[]',
};

interface Connection {
  sql: postgres.Sql;
  /** The statement `cut` cancels. */
  track(query: { cancel(): void } | undefined): void;
  /** Stop the running statement (cancel request) and drop the connection. */
  cut(): void;
}

export function postgresTools(ctx: PostgresContext, roles: GrantRoles, secrets: UpstreamSecrets): ToolContribution<PostgresScope>[] {
  function connect(grant: Grant<PostgresScope>, resource: PostgresResource, login: UpstreamLogin): Connection {
    const ca = secrets.caBundles.get(grant.resource);
    const ssl = resource.tls === 'disable' ? false : resource.tls === 'require' ? { rejectUnauthorized: false } : { rejectUnauthorized: true, ...(ca ? { ca } : {}) };
    const sql = postgres({
      host: resource.host,
      port: resource.port,
      database: resource.database,
      username: login.user,
      password: upstreamPassword(ctx, secrets, resource, grant, login),
      ssl,
      max: 1,
      prepare: false,
      fetch_types: false,
      idle_timeout: 0,
      connect_timeout: Math.ceil(resource.connectTimeoutMs / 1000),
      onnotice: () => {},
      connection: { application_name: 'airlock-mcp' },
    });
    let running: { cancel(): void } | undefined;
    return {
      sql,
      track: (query) => void (running = query),
      cut: () => {
        running?.cancel();
        running = undefined;
        void sql.end({ timeout: 1 }).catch(() => {});
      },
    };
  }

  const tool: ToolContribution<PostgresScope> = {
    name: 'query_postgres',
    description:
      'Run one SQL statement on the database of your grant, as its access level\'s database role (the grant decides what may run). Use $1, $2 ... with `params` for values. Returns columns with types and rows (at most max_rows).',
    inputSchema: z.object({
      sql: z.string().min(1).max(1024 * 1024).describe('one SQL statement'),
      params: z.array(z.union([z.string(), z.number(), z.boolean(), z.null()])).max(1000).optional().describe('values for $1, $2 ...'),
      max_rows: z.number().int().min(1).optional().describe('rows to return at most (capped by airlock)'),
    }),
    async run(call, input) {
      const grant = call.grant;
      const resource = ctx.resources.get(grant.resource);
      if (!resource) throw new AirlockError(ErrorCodes.WRONG_RESOURCE, `grant ${grant.id} names a resource this gateway no longer serves`);
      const { login, readOnly } = await loginOf(resource, grant, roles, (message, err) => ctx.log.warn({ err: (err as Error).message, grant: grant.id }, message));
      const text = String(input.sql);
      const params = (input.params as (string | number | boolean | null)[] | undefined) ?? [];
      const maxRows = Math.min(Number(input.max_rows ?? call.limits.maxRows), call.limits.maxRows);

      // The same guardrail as the wire path, before anything opens or runs: a refusal is a
      // `pg.query` record with outcome denied, and the tool call fails naming the rule.
      const decision = decideQuery(text, { readOnly });
      if (!decision.allowed) {
        await ctx.audit.exchange(grant, { type: 'pg.query', data: { sql: text, via: 'mcp' } }).refuse(ErrorCodes.FORBIDDEN, decision.message, { rule: decision.rule, sqlstate: decision.sqlstate });
        throw new AirlockError(ErrorCodes.FORBIDDEN, decision.message);
      }

      const conn = connect(grant, resource, login);
      let session: Session<PostgresScope>;
      try {
        session = ctx.sessions.open(grant, { source: 'mcp', data: { database: resource.database, dbUser: login.user, via: 'mcp' }, onClose: () => conn.cut() });
      } catch (e) {
        conn.cut();
        throw e;
      }
      const onAbort = () => conn.cut();
      call.signal.addEventListener('abort', onAbort, { once: true });
      try {
        return await runStatement(ctx.audit, session, conn, { text, params, maxRows, maxBytes: call.limits.maxBytes, recordParameters: resource.recordParameters });
      } finally {
        call.signal.removeEventListener('abort', onAbort);
        conn.cut();
        session.end(session.cut ? session.cut.reason : 'client');
      }
    },
  };
  return [tool];
}

async function runStatement(
  audit: AuditRecorder,
  session: Session<PostgresScope>,
  conn: Connection,
  q: { text: string; params: (string | number | boolean | null)[]; maxRows: number; maxBytes: number; recordParameters: boolean },
): Promise<ToolResult> {
  const recorded = { ...(q.text.length > MAX_RECORDED_SQL ? { sql: q.text.slice(0, MAX_RECORDED_SQL), truncated: true } : { sql: q.text }), ...(q.recordParameters && q.params.length ? { params: q.params } : {}), via: 'mcp' };
  // The same audited exchange as the wire path: pg.query spooled before the statement
  // leaves, pg.result as its outcome, durable before the model sees anything.
  const exchange = audit.exchange(session, { type: 'pg.query', data: recorded, resultType: 'pg.result' });
  await exchange.ready();
  const started = performance.now();
  const ms = () => Math.round((performance.now() - started) * 1000) / 1000;
  // Rows are streamed (forEach), kept up to the caps and only counted beyond them: a SELECT
  // of a huge table costs airlock one row at a time, never the whole result in memory.
  const kept = new KeptRows(q.maxRows, q.maxBytes);
  let result: Awaited<ReturnType<postgres.PendingQuery<postgres.Row[]>['forEach']>>;
  try {
    const query = conn.sql.unsafe(q.text, q.params);
    conn.track(query);
    result = await query.forEach((row) => kept.add(row));
    conn.track(undefined);
  } catch (e) {
    const error = pgError(e, session);
    await exchange.finish('error', { query: exchange.seq, rows: 0, ms: ms(), error }).catch(() => {});
    if (session.cut) throw new AirlockError(ErrorCodes.GRANT_REVOKED, session.cut.message);
    return { structured: { error, rows: [], columns: [] }, text: `ERROR ${error.code}: ${error.message}`, isError: true };
  }
  const total = result.count ?? kept.seen;
  await exchange.finish('ok', { query: exchange.seq, rows: total, ms: ms(), commands: [result.command] });
  return shape(result, kept, total);
}

/** The rows a tool result carries: up to max_rows and max_bytes of JSON; the rest only counted. */
class KeptRows {
  /** As postgres.js parsed them; turned into value arrays once the columns are known (shape). */
  readonly rows: postgres.Row[] = [];
  seen = 0;
  cutBy: 'max_rows' | 'max_bytes' | undefined;
  private bytes = 0;

  constructor(readonly maxRowsCap: number, readonly maxBytesCap: number) {}

  add(row: postgres.Row): void {
    this.seen++;
    if (this.cutBy) return;
    if (this.rows.length >= this.maxRowsCap) {
      this.cutBy = 'max_rows';
      return;
    }
    const size = Buffer.byteLength(JSON.stringify(Object.values(row)));
    if (this.bytes + size > this.maxBytesCap) {
      this.cutBy = 'max_bytes';
      return;
    }
    this.bytes += size;
    this.rows.push(row);
  }
}

function pgError(e: unknown, session: Session<PostgresScope>): { code: string; message: string } {
  if (session.cut) return { code: '57P01', message: session.cut.message };
  if (e instanceof postgres.PostgresError) return { code: e.code, message: e.message };
  if (isAirlockError(e)) return { code: '08006', message: e.message };
  return { code: '08006', message: `connection failed: ${(e as Error).message}` };
}

/** Columns with types, rows up to the caps; the caps and whether they cut are stated. */
function shape(result: { readonly command: string; readonly columns: postgres.ColumnList<string> }, kept: KeptRows, total: number): ToolResult {
  const columns = (result.columns ?? []).map((c) => ({ name: c.name, type: TYPE_NAMES[c.type] ?? `oid:${c.type}` }));
  const { cutBy } = kept;
  const rows = kept.rows.map((row) => columns.map((c) => row[c.name]));
  const caps = { maxRows: kept.maxRowsCap, maxBytes: kept.maxBytesCap, returnedRows: rows.length, totalRows: kept.seen, truncated: cutBy !== undefined, ...(cutBy ? { cutBy } : {}) };
  const header = columns.map((c) => `${c.name} (${c.type})`).join(' | ');
  const lines = rows.slice(0, 50).map((r) => r.map((v) => (v === null ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v))).join(' | '));
  const note = cutBy ? `\n(${rows.length} of ${kept.seen} rows returned: cut by ${cutBy})` : rows.length > 50 ? `\n(${rows.length - 50} more rows in structuredContent)` : '';
  const text = columns.length ? `${result.command} ${total}\n${header}\n${lines.join('\n')}${note}` : `${result.command} ${total}`;
  return { structured: { command: result.command, rowCount: total, columns, rows, caps }, text };
}
