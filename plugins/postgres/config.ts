/** Configuration of `resources.<name>` with `type: postgres` and of `gateway.postgres`. */
import { z } from 'zod';
import { listenAddress } from '../../core/public.ts';
import type { PluginContext } from '../../core/plugin.ts';
import { parseTableName, type TableName } from './provision/table-names.ts';

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');
const accessLevelName = z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, 'access level names are lower-case words');

export const PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'] as const;
export type Privilege = (typeof PRIVILEGES)[number];

function asPattern(text: string): TableName {
  const t = parseTableName(text, { allowWildcard: true });
  if (typeof t === 'string') throw new Error(`unreachable: pattern ${text} passed validation`);
  return t;
}

const tablePattern = z.string().superRefine((text, ctx) => {
  const t = parseTableName(text, { allowWildcard: true });
  if (typeof t === 'string') ctx.addIssue({ code: 'custom', message: t });
});

/** One level, static or provisioned; which keys may be combined is checked below (errors name the key). */
const accessLevelSchema = z
  .object({
    user: z.string().min(1).optional(),
    /** With `auth.type: password`: this level's own password variable (default: auth.passwordEnv). */
    passwordEnv: envName.optional(),
    /** A static level whose role only reads: the guardrail's SELECT-only rules apply too (provisioned levels: from privileges). */
    readOnly: z.boolean().optional(),
    privileges: z
      .array(z.string().transform((p) => p.toUpperCase()).pipe(z.enum(PRIVILEGES, { message: `unknown privilege (one of ${PRIVILEGES.join(', ')})` })))
      .min(1, 'at least one privilege')
      .optional(),
    tables: z.array(tablePattern).min(1, 'at least one table or schema.* pattern').optional(),
  })
  .strict()
  .superRefine((level, ctx) => {
    const provisionedKeys = (['privileges', 'tables'] as const).filter((k) => level[k] !== undefined);
    if (level.user !== undefined) {
      for (const k of provisionedKeys) ctx.addIssue({ code: 'custom', path: [k], message: `a level has either user (static) or privileges and tables (provisioned), not both` });
      return;
    }
    if (level.passwordEnv !== undefined) ctx.addIssue({ code: 'custom', path: ['passwordEnv'], message: 'passwordEnv belongs to a static level (with user)' });
    if (level.readOnly !== undefined) ctx.addIssue({ code: 'custom', path: ['readOnly'], message: 'readOnly belongs to a static level (with user); a provisioned level is read-only when its privileges are only SELECT' });
    if (level.privileges === undefined) ctx.addIssue({ code: 'custom', path: ['privileges'], message: level.tables ? 'a provisioned level needs privileges' : 'a level needs user (static) or privileges and tables (provisioned)' });
    else if (level.tables === undefined) ctx.addIssue({ code: 'custom', path: ['tables'], message: 'a provisioned level needs tables' });
  });

type RawResource = {
  auth: { type: 'rds-iam' } | { type: 'password'; passwordEnv: string };
  access: Record<string, { user?: string | undefined; privileges?: unknown }>;
  provision?: { user: string; passwordEnv?: string | undefined } | undefined;
};

function checkProvisioning(r: RawResource, ctx: z.RefinementCtx): void {
  const provisionedLevels = Object.entries(r.access).filter(([, a]) => a.user === undefined);
  if (provisionedLevels.length > 0 && !r.provision) {
    ctx.addIssue({ code: 'custom', path: ['provision'], message: `access level ${provisionedLevels[0]![0]} is provisioned (privileges, tables): the resource needs provision: {user, passwordEnv}` });
  }
  if (!r.provision) return;
  if (r.auth.type === 'password' && !r.provision.passwordEnv) ctx.addIssue({ code: 'custom', path: ['provision', 'passwordEnv'], message: 'with auth.type: password the provisioning admin needs passwordEnv' });
  if (r.auth.type === 'rds-iam' && r.provision.passwordEnv) ctx.addIssue({ code: 'custom', path: ['provision', 'passwordEnv'], message: 'with auth.type: rds-iam the provisioning admin logs in with an IAM token: no passwordEnv' });
}

export const postgresResourceSchema = z
  .object({
    type: z.literal('postgres'),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(5432),
    database: z.string().min(1),
    /** TLS to the upstream: disable | require (encrypt, trust any cert) | verify-full (CA + host name). */
    tls: z.enum(['disable', 'require', 'verify-full']).default('require'),
    /** PEM bundle for `tls: verify-full`. */
    caFile: z.string().min(1).optional(),
    /** Region for RDS IAM tokens (default `aws.region`). */
    region: z.string().min(1).optional(),
    auth: z.discriminatedUnion('type', [
      z.object({ type: z.literal('rds-iam') }).strict(),
      z.object({ type: z.literal('password'), passwordEnv: envName }).strict(),
    ]),
    /**
     * Access levels: static (`{user}`: every grant is that database role) or provisioned
     * (`{privileges, tables}`: a role of its own per grant, made by `provision.user`).
     */
    access: z.record(accessLevelName, accessLevelSchema).refine((a) => Object.keys(a).length > 0, 'at least one access level'),
    /** The admin that creates and drops the per-grant roles of provisioned levels (CREATEROLE). */
    provision: z
      .object({
        user: z.string().min(1),
        /** With `auth.type: password`: the admin's password variable (none with rds-iam: it logs in with an IAM token). */
        passwordEnv: envName.optional(),
      })
      .strict()
      .optional(),
    /** Record Bind parameter values in `pg.query` (off by default: parameters often carry personal data). */
    recordParameters: z.boolean().default(false),
    /** Upstream connect + login timeout. */
    connectTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.tls === 'verify-full' && !r.caFile) ctx.addIssue({ code: 'custom', path: ['caFile'], message: 'tls: verify-full needs caFile' });
    if (r.tls !== 'verify-full' && r.caFile) ctx.addIssue({ code: 'custom', path: ['caFile'], message: 'caFile is used only with tls: verify-full' });
    // An IAM token is a bearer credential for 15 minutes: never send it in the clear.
    if (r.auth.type === 'rds-iam') {
      for (const [level, a] of Object.entries(r.access)) {
        if (a.passwordEnv) ctx.addIssue({ code: 'custom', path: ['access', level, 'passwordEnv'], message: 'passwordEnv is used only with auth.type: password' });
      }
    }
    checkProvisioning(r, ctx);
    if (r.auth.type === 'rds-iam' && r.tls === 'disable') ctx.addIssue({ code: 'custom', path: ['tls'], message: 'auth rds-iam requires tls: require or verify-full' });
  })
  .transform(({ access, ...rest }) => {
    // Split the levels by kind so code that reads `access[level].user` only ever sees static
    // levels: a provisioned level has no fixed user, and a path that does not know about it
    // finds no level and fails closed.
    const staticLevels: Record<string, { user: string; passwordEnv?: string | undefined; readOnly?: boolean | undefined }> = {};
    const provisioned: Record<string, { privileges: Privilege[]; tables: TableName[] }> = {};
    for (const [name, level] of Object.entries(access)) {
      if (level.user !== undefined) staticLevels[name] = { user: level.user, ...(level.passwordEnv ? { passwordEnv: level.passwordEnv } : {}), ...(level.readOnly ? { readOnly: true } : {}) };
      else provisioned[name] = { privileges: [...new Set(level.privileges ?? [])], tables: (level.tables ?? []).map(asPattern) };
    }
    return { ...rest, access: staticLevels, provisioned };
  });

export type PostgresResource = z.output<typeof postgresResourceSchema>;
export type StaticAccessLevel = PostgresResource['access'][string];
export type ProvisionedAccessLevel = PostgresResource['provisioned'][string];

export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export const postgresListenerSchema = z
  .object({
    listen: listenAddress.default('127.0.0.1:6432'),
    /** TLS for clients that ask (SSLRequest): a generated self-signed certificate, files, or off. */
    tls: z.union([z.literal('self-signed'), z.literal('disable'), z.object({ cert: z.string().min(1), key: z.string().min(1) }).strict()]).default('self-signed'),
    /** Largest client message accepted (bytes); larger ones close the connection. */
    maxMessageBytes: z.number().int().min(1024).max(1024 * 1024 * 1024).default(DEFAULT_MAX_MESSAGE_BYTES),
    /** Host (and port) written into `connect` when it differs from the listen address. */
    advertise: z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+)(:\d{1,5})?$/).optional(),
    /** With `tls` on, accept clients that do not ask for TLS (off by default: they are refused with 28000). */
    allowPlaintext: z.boolean().default(false),
    /** A client must finish startup and authentication within this time. */
    handshakeTimeoutMs: z.number().int().min(100).max(600_000).default(15_000),
  })
  .strict();

export type PostgresListenerConfig = z.infer<typeof postgresListenerSchema>;

/**
 * A Postgres grant's scope: a static level's database user, or a provisioned level's
 * privileges and tables (the role is made per grant, see provision/).
 */
export const postgresScopeSchema = z.union([
  z.object({ database: z.string(), user: z.string() }),
  z.object({ database: z.string(), privileges: z.array(z.enum(PRIVILEGES)).readonly(), tables: z.array(z.string()).readonly() }),
]);
export type PostgresScope = z.infer<typeof postgresScopeSchema>;

/** The context the Postgres plugin starts with. */
export type PostgresContext = PluginContext<PostgresResource, PostgresScope, PostgresListenerConfig>;
