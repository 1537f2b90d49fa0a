/**
 * Shared by the S3 / CloudWatch sink tests: a SinkContext built by hand (as the gateway
 * builds it: airlock's own keys, `aws.endpoints` pointing at moto), real hash-chained
 * records from core's HashChain, readers for what the sinks stored, and the wiring of
 * sinks to a real audit pipeline.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import pino from 'pino';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { GetLogEventsCommand, type CloudWatchLogsClient, type OutputLogEvent } from '@aws-sdk/client-cloudwatch-logs';
import type { AuditRecord, RegisteredSink, SinkBatch, SinkContext } from '../../core/plugin.ts';
import type { AuditPipeline } from '../../core/audit/pipeline.ts';
import { HashChain } from '../../core/audit/chain.ts';
import { GENESIS_HASH } from '../../core/audit/canonical.ts';
import fileSink from '../../audit-sinks/file/index.ts';
import { appendMany, openPipeline, type TestKey } from '../audit/helpers.ts';

export function sinkContext(opts: {
  endpoint: string;
  keys: { accessKeyId: string; secretAccessKey: string };
  gatewayId?: string;
  dataDir?: string;
  region?: string;
}): SinkContext {
  return {
    gatewayId: opts.gatewayId ?? 'gw-test0001',
    dataDir: opts.dataDir ?? '/nonexistent',
    aws: {
      region: opts.region ?? 'us-east-1',
      endpoint: () => opts.endpoint,
      credentials: async () => ({ accessKeyId: opts.keys.accessKeyId, secretAccessKey: opts.keys.secretAccessKey }),
    },
    log: pino({ level: 'silent' }),
  };
}

/** A generator of chained records, as the spool would hand them over. */
export class RecordSource {
  private readonly chain = new HashChain(0, GENESIS_HASH);
  readonly all: AuditRecord[] = [];
  readonly lines: string[] = [];

  next(count: number, opts: { at?: Date; data?: (seq: number) => Record<string, unknown> } = {}): SinkBatch {
    const records: AuditRecord[] = [];
    const lines: string[] = [];
    for (let i = 0; i < count; i++) {
      const seq = this.chain.lastSeq + 1;
      const { record, line } = this.chain.next(
        { type: 'pg.query', agent: 'local:report-bot', grant: 'AGTEST', resource: 'reporting', data: opts.data?.(seq) ?? { sql: `select ${seq}` }, outcome: 'ok' },
        opts.at ?? new Date(),
      );
      records.push(record);
      lines.push(line);
    }
    this.all.push(...records);
    this.lines.push(...lines);
    return { records, lines };
  }
}

export function slice(batch: SinkBatch, start: number, end?: number): SinkBatch {
  return { records: batch.records.slice(start, end), lines: batch.lines.slice(start, end) };
}

// ---------------------------------------------------------------------------------------
// Reading back what the sinks stored (with the harness's admin keys)
// ---------------------------------------------------------------------------------------

/**
 * Every object key in a bucket under `prefix`. moto 5 miscomputes the signature when a
 * query value holds `/` (Prefix=a/), so list everything and filter here.
 */
export async function listKeys(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key?.startsWith(prefix)) keys.push(o.Key);
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

/** Download every object under `prefix` into `dir` (flattened names); returns the paths. */
export async function downloadObjects(client: S3Client, bucket: string, prefix: string, dir: string): Promise<string[]> {
  const paths: string[] = [];
  for (const key of await listKeys(client, bucket, prefix)) {
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const path = join(dir, key.replace(/\//g, '_'));
    await writeFile(path, Buffer.from(await got.Body!.transformToByteArray()));
    paths.push(path);
  }
  return paths;
}

/** The JSONL lines of gzip objects, in the order given. */
export async function gunzipLines(paths: readonly string[]): Promise<string[]> {
  const lines: string[] = [];
  for (const path of paths) {
    const text = gunzipSync(await readFile(path)).toString('utf8');
    lines.push(...text.split('\n').filter((l) => l !== ''));
  }
  return lines;
}

export async function readLogEvents(client: CloudWatchLogsClient, logGroupName: string, logStreamName: string): Promise<OutputLogEvent[]> {
  const events: OutputLogEvent[] = [];
  let token: string | undefined;
  for (;;) {
    const out = await client.send(new GetLogEventsCommand({ logGroupName, logStreamName, startFromHead: true, nextToken: token }));
    events.push(...(out.events ?? []));
    if (!out.nextForwardToken || out.nextForwardToken === token || (out.events ?? []).length === 0) break;
    token = out.nextForwardToken;
  }
  return events;
}

/** Reassemble fragment events into the original lines (what a reader of the stream does). */
export function reassemble(messages: readonly string[]): string[] {
  const lines: string[] = [];
  let pending: { seq: number; parts: number; chunks: string[] } | undefined;
  for (const message of messages) {
    const parsed = JSON.parse(message) as { seq: number; fragment?: { part: number; parts: number }; chunk?: string };
    if (!parsed.fragment) {
      assert.equal(pending, undefined, 'a whole record interrupts a fragmented one');
      lines.push(message);
      continue;
    }
    pending ??= { seq: parsed.seq, parts: parsed.fragment.parts, chunks: [] };
    assert.equal(parsed.seq, pending.seq);
    assert.equal(parsed.fragment.part, pending.chunks.length + 1, 'fragments in order');
    pending.chunks.push(parsed.chunk ?? '');
    if (pending.chunks.length === pending.parts) {
      lines.push(pending.chunks.join(''));
      pending = undefined;
    }
  }
  assert.equal(pending, undefined, 'no unfinished fragmented record');
  return lines;
}

/** Lines of one file-sink file. */
export async function fileSinkLines(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  return text.split('\n').filter((l) => l !== '');
}

// ---------------------------------------------------------------------------------------
// Wiring sinks to a real audit pipeline, as the gateway does
// ---------------------------------------------------------------------------------------

export async function attach(pipeline: AuditPipeline, definition: RegisteredSink, config: { type: string; [key: string]: unknown }, ctx: SinkContext): Promise<string> {
  const parsed = definition.schema.parse(config);
  const sink = await definition.create(parsed, ctx);
  const id = definition.cursorId(parsed);
  pipeline.attachSink(id, sink, definition.maxBatch);
  return id;
}

/** Resolves once every sink's cursor reached the pipeline's last seq; fails after `ms`. */
export async function drained(pipeline: AuditPipeline, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = pipeline.metrics();
    if (m.sinks.every((s) => s.cursor >= m.lastSeq)) return;
    if (Date.now() > deadline) throw new Error(`sinks not drained after ${ms} ms: ${JSON.stringify(m.sinks)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Runs a real pipeline (checkpoint every 40) with the file sink and `sink` attached, appends
 * 5 rounds of 60 records, drains and closes: returns the file sink's lines for comparison.
 */
export async function drainBesideFileSink(o: {
  dataDir: string;
  key: TestKey;
  ctx: SinkContext;
  sink: RegisteredSink;
  config: { type: string; [key: string]: unknown };
}): Promise<string[]> {
  const pipeline = await openPipeline(o.dataDir, o.key, { gatewayId: 'gw-e2e', checkpointEvery: 40 });
  const filePath = join(o.dataDir, 'audit', 'audit.jsonl');
  await attach(pipeline, fileSink, { type: 'file', path: filePath }, o.ctx);
  await attach(pipeline, o.sink, o.config, o.ctx);
  for (let round = 0; round < 5; round++) {
    await appendMany(pipeline, 60, `round-${round}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await drained(pipeline);
  await pipeline.close();
  return fileSinkLines(filePath);
}
