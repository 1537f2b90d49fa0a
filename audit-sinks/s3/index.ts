/**
 * S3 audit sink: every delivered batch becomes one gzip JSONL object (or several, when the
 * runner's batch is larger than this sink's `maxBatch`) at a key derived from the batch
 * alone, so a retried batch overwrites its own object. Objects hold the exact spool lines,
 * so `airlock audit verify` checks the hash chain across downloaded objects.
 *
 * Uses airlock's own credentials (no grant) and `aws.endpoints.s3` when configured; S3-
 * compatible endpoints need `forcePathStyle` (the default when the endpoint is not AWS's).
 */
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { defineSink, parseDuration, type AuditSink, type SinkBatch, type SinkContext } from '../../core/public.ts';

/** Few, larger objects: at low traffic an object at most every 2 s (shutdown flushes at once). */
const DEFAULT_FLUSH_INTERVAL = '2s';
import { AirlockError } from '../../core/errors.ts';
import { normalizePrefix, objectKey } from './object-key.ts';
import { DEFAULT_LIMITS, storeObject, type ObjectHeaders, type UploadLimits } from './upload.ts';

const gzipAsync = promisify(gzip);

const DAY_MS = 24 * 60 * 60 * 1000;
const DEFAULT_MAX_BATCH = 10_000;

export const s3SinkSchema = z.strictObject({
  type: z.literal('s3'),
  /** S3 bucket naming rules (lower-case, digits, dots, hyphens; 3–63 characters). */
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name'),
  prefix: z.string().max(512).optional(),
  region: z.string().min(1).optional(),
  /** KMS key id or ARN: objects are written with SSE-KMS under this key. */
  sseKmsKeyId: z.string().min(1).optional(),
  /** Object-lock retention for each object (the bucket must have object lock enabled). */
  objectLock: z
    .strictObject({
      mode: z.enum(['GOVERNANCE', 'COMPLIANCE']),
      retainDays: z.number().int().min(1).max(36500),
    })
    .optional(),
  forcePathStyle: z.boolean().optional(),
  /** Most records per object. */
  maxBatch: z.number().int().min(1).max(100_000).optional(),
  /** Batch by age: an object is written once `maxBatch` records wait or the oldest is this old. */
  flushInterval: z.string().refine((v) => parseDuration(v) !== undefined, 'expected a duration like 5s').optional(),
});

export type S3SinkConfig = z.infer<typeof s3SinkSchema>;

/** Path style unless the endpoint is AWS's own (virtual-hosted buckets need AWS DNS). */
function defaultPathStyle(endpoint: string): boolean {
  try {
    return !/(^|\.)amazonaws\.com(\.cn)?$/.test(new URL(endpoint).hostname);
  } catch {
    return true;
  }
}

function objectHeaders(config: S3SinkConfig, now: Date): ObjectHeaders {
  const headers: ObjectHeaders = {};
  if (config.sseKmsKeyId !== undefined) {
    headers.ServerSideEncryption = 'aws:kms';
    headers.SSEKMSKeyId = config.sseKmsKeyId;
  }
  if (config.objectLock !== undefined) {
    headers.ObjectLockMode = config.objectLock.mode;
    headers.ObjectLockRetainUntilDate = new Date(now.getTime() + config.objectLock.retainDays * DAY_MS);
  }
  return headers;
}

/** The parts below are exported for tests; the gateway uses only the definition. */
export interface S3SinkInternals {
  limits?: UploadLimits;
}

export async function createS3Sink(config: S3SinkConfig, ctx: SinkContext, internals: S3SinkInternals = {}): Promise<AuditSink> {
  // The id becomes one path segment of every key: refuse anything that could escape it.
  if (!/^[A-Za-z0-9._-]+$/.test(ctx.gatewayId) || /^\.+$/.test(ctx.gatewayId)) {
    throw new AirlockError('BAD_REQUEST', `s3 sink: gateway id ${JSON.stringify(ctx.gatewayId)} cannot be used in an object key`);
  }
  const region = config.region ?? ctx.aws.region;
  const endpoint = ctx.aws.endpoint('s3', region);
  const client = new S3Client({
    region,
    endpoint,
    forcePathStyle: config.forcePathStyle ?? defaultPathStyle(endpoint),
    credentials: () => ctx.aws.credentials(),
    maxAttempts: 3,
    retryMode: 'standard',
    // A hung connection must fail so the runner can retry, not block the sink forever.
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
  });
  const prefix = normalizePrefix(config.prefix);
  const maxBatch = config.maxBatch ?? DEFAULT_MAX_BATCH;
  const limits = internals.limits ?? DEFAULT_LIMITS;

  async function storeSlice(records: SinkBatch['records'], lines: SinkBatch['lines']): Promise<void> {
    const key = objectKey(prefix, ctx.gatewayId, records);
    const body = await gzipAsync(Buffer.from(lines.join('\n') + '\n', 'utf8'));
    const stored = await storeObject(client, { bucket: config.bucket, key, body, headers: objectHeaders(config, new Date()) }, limits);
    ctx.log.debug({ sink: 's3', bucket: config.bucket, key, records: records.length, bytes: stored.bytes, parts: stored.parts }, 'audit batch stored');
  }

  return {
    async deliver(batch: SinkBatch): Promise<void> {
      if (batch.records.length !== batch.lines.length) {
        throw new AirlockError('INTERNAL', 's3 sink: batch records and lines differ in length');
      }
      for (let start = 0; start < batch.records.length; start += maxBatch) {
        const end = Math.min(start + maxBatch, batch.records.length);
        await storeSlice(batch.records.slice(start, end), batch.lines.slice(start, end));
      }
    },
    async close(): Promise<void> {
      client.destroy();
    },
  };
}

export default defineSink({
  type: 's3',
  schema: s3SinkSchema,
  maxBatch: DEFAULT_MAX_BATCH,
  cursorId: (config) => `s3:${config.bucket}/${normalizePrefix(config.prefix)}`,
  lingerMs: (config) => parseDuration(config.flushInterval ?? DEFAULT_FLUSH_INTERVAL) ?? 0,
  create: (config, ctx) => createS3Sink(config, ctx),
});
