/**
 * The config schema (docs/contract.md "Configuration", key names are CONTRACT). Core owns the frame;
 * each plugin contributes the schema of its resource type and of `gateway.<type>`, each
 * sink the schema of its `audit.sinks[]` entry. Every object is strict: unknown keys fail.
 */
import { z } from 'zod';
import type { RegisteredPlugin, RegisteredSink } from '../plugin.ts';
import { parseDuration } from './duration.ts';
import { notifySchema, type NotifyTargetConfig } from '../notify/schema.ts';

export const duration = z.string().refine((s) => parseDuration(s) !== undefined, {
  message: 'expected a duration like 90s, 15m, 1h',
});

export const listenAddress = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'expected host:port');

const tlsSetting = z.union([
  z.literal('self-signed'),
  z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }),
]);

const httpListener = z.strictObject({
  listen: listenAddress.default('127.0.0.1:8080'),
  publicUrl: z.url().optional(),
  tls: tlsSetting.optional(),
});

const localIssuer = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/),
  type: z.literal('local'),
  /** Longest lifetime `airlock token` may mint. */
  maxTokenTtl: duration.default('24h'),
});

const jwksIssuer = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/),
  type: z.literal('jwks'),
  issuer: z.string().min(1),
  jwksUri: z.url(),
  audience: z.union([z.string(), z.array(z.string()).min(1)]),
  algorithms: z.array(z.string()).min(1).optional(),
  clockTolerance: duration.default('30s'),
  /** Console sign-in (OIDC authorization code + PKCE) through this issuer. */
  clientId: z.string().min(1).optional(),
  /** A confidential client's secret, by environment variable name. */
  clientSecretEnv: z.string().min(1).optional(),
});

const policy = z.strictObject({
  agents: z.array(z.string().min(1)).min(1),
  resources: z.array(z.string().min(1)).min(1),
  access: z.array(z.string().min(1)).min(1),
  maxTtl: duration,
  approval: z.enum(['none', 'required']).default('none'),
  /** Live sessions (connections, streams) one grant may hold at once; beyond: SESSION_LIMIT. */
  maxSessions: z.number().int().min(1).max(10_000).default(10),
});

/** Where grants and shared state live (SPEC "Shared store and replicas"). */
const storeConfig = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('file') }),
  z.strictObject({
    type: z.literal('postgres'),
    /** The environment variable holding the connection URL (never the URL itself: it holds a password). */
    urlEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name'),
    /** Past this without a confirmed view, live sessions are closed (fail closed). */
    maxStaleness: duration.default('15s'),
    schema: z.string().regex(/^[a-z_][a-z0-9_]{0,47}$/, 'lower-case letters, digits and _ (max 48)').default('airlock'),
  }),
]);

/** Validate with a plugin's or sink's own schema, re-reporting its issues at the right path. */
function delegate(schema: z.ZodType<{ type: string }>, value: unknown, ctx: z.RefinementCtx): { type: string } {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path as PropertyKey[] });
  return z.NEVER;
}

export function buildConfigSchema(plugins: readonly RegisteredPlugin[], sinks: readonly RegisteredSink[]) {
  const gatewayShape: Record<string, z.ZodType> = {
    http: httpListener.default({ listen: '127.0.0.1:8080' }),
    dataDir: z.string().min(1).default('./.airlock'),
  };
  for (const p of plugins) if (p.listenerSchema) gatewayShape[p.type] = p.listenerSchema.optional();

  const resourceTypes = plugins.map((p) => p.type);
  const resource = z.looseObject({ type: z.string() }).transform((value, ctx) => {
    const plugin = plugins.find((p) => p.type === value.type);
    if (!plugin) {
      ctx.addIssue({ code: 'custom', path: ['type'], message: `unknown resource type "${value.type}" (known: ${resourceTypes.join(', ') || 'none'})` });
      return z.NEVER;
    }
    return delegate(plugin.resourceSchema, value, ctx);
  });

  const sinkTypes = sinks.map((s) => s.type);
  const sink = z.looseObject({ type: z.string() }).transform((value, ctx) => {
    const def = sinks.find((s) => s.type === value.type);
    if (!def) {
      ctx.addIssue({ code: 'custom', path: ['type'], message: `unknown sink type "${value.type}" (known: ${sinkTypes.join(', ')})` });
      return z.NEVER;
    }
    return delegate(def.schema, value, ctx);
  });

  return z.strictObject({
    gateway: z.strictObject(gatewayShape).default({} as never),
    identity: z
      .strictObject({
        issuers: z.array(z.discriminatedUnion('type', [localIssuer, jwksIssuer])).default([{ name: 'local', type: 'local', maxTokenTtl: '24h' }]),
        admins: z.array(z.string().min(1)).default([]),
      })
      .default({ issuers: [{ name: 'local', type: 'local', maxTokenTtl: '24h' }], admins: [] }),
    aws: z
      .strictObject({
        region: z.string().min(1).default('us-east-1'),
        endpoints: z.record(z.string(), z.url()).default({}),
      })
      .default({ region: 'us-east-1', endpoints: {} }),
    resources: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'resource names are lower-case letters, digits, - and _'), resource).default({}),
    policies: z.array(policy).default([]),
    store: storeConfig.default({ type: 'file' }),
    audit: z
      .strictObject({
        durability: z.enum(['strict', 'buffered']).default('strict'),
        checkpointEvery: z.number().int().min(1).default(1000),
        checkpointInterval: duration.default('60s'),
        spoolMaxBytes: z.number().int().min(1024).default(1024 ** 3),
        // Per source, failures beyond the first few of an interval become one summary record.
        authFailureSummaryInterval: duration.default('60s'),
        sinks: z.array(sink).default([]),
      })
      .default({ durability: 'strict', checkpointEvery: 1000, checkpointInterval: '60s', spoolMaxBytes: 1024 ** 3, authFailureSummaryInterval: '60s', sinks: [] }),
    notify: notifySchema,
  });
}

export type PolicyConfig = z.infer<typeof policy>;
export type IssuerConfig = z.infer<typeof localIssuer> | z.infer<typeof jwksIssuer>;
export type TlsSetting = z.infer<typeof tlsSetting>;
export type StoreConfig = z.infer<typeof storeConfig>;

/** The validated config as core sees it (resources and sinks stay opaque to core). */
export interface AirlockConfig {
  gateway: {
    http: { listen: string; publicUrl?: string | undefined; tls?: TlsSetting | undefined };
    dataDir: string;
    [pluginType: string]: unknown;
  };
  identity: { issuers: IssuerConfig[]; admins: string[] };
  aws: { region: string; endpoints: Record<string, string> };
  resources: Record<string, { type: string; [key: string]: unknown }>;
  policies: PolicyConfig[];
  /** Optional only so configs built by hand (tests) stay valid; parsing always sets it. */
  store?: StoreConfig;
  audit: {
    durability: 'strict' | 'buffered';
    checkpointEvery: number;
    checkpointInterval: string;
    spoolMaxBytes: number;
    authFailureSummaryInterval?: string;
    sinks: Array<{ type: string; [key: string]: unknown }>;
  };
  notify: NotifyTargetConfig[];
}
