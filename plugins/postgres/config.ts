/** Configuration of `resources.<name>` with `type: postgres` and of `gateway.postgres`. */
import { z } from 'zod';
import { listenAddress } from '../../core/public.ts';
import type { PluginContext } from '../../core/plugin.ts';

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');
const accessLevelName = z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, 'access level names are lower-case words');

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
    access: z
      .record(
        accessLevelName,
        z
          .object({
            user: z.string().min(1),
            /** With `auth.type: password`: this level's own password variable (default: auth.passwordEnv). */
            passwordEnv: envName.optional(),
          })
          .strict(),
      )
      .refine((a) => Object.keys(a).length > 0, 'at least one access level'),
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
    if (r.auth.type === 'rds-iam' && r.tls === 'disable') ctx.addIssue({ code: 'custom', path: ['tls'], message: 'auth rds-iam requires tls: require or verify-full' });
  });

export type PostgresResource = z.infer<typeof postgresResourceSchema>;

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

/** A Postgres grant's scope: the database and the access level's database user. */
export const postgresScopeSchema = z.object({ database: z.string(), user: z.string() });
export type PostgresScope = z.infer<typeof postgresScopeSchema>;

/** The context the Postgres plugin starts with. */
export type PostgresContext = PluginContext<PostgresResource, PostgresScope, PostgresListenerConfig>;
