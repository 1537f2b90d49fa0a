/**
 * CloudWatch Logs audit sink: one log event per record (oversize records split into
 * fragments, see events.ts), PutLogEvents calls packed within the service limits, and
 * exactly-once per seq across retries and restarts by reading how far the stream got
 * (position.ts) and skipping what it already holds.
 *
 * Uses airlock's own credentials (no grant) and `aws.endpoints.logs` when configured.
 * IAM actions needed: logs:PutLogEvents, logs:GetLogEvents, and with `create` (default
 * true) logs:CreateLogGroup and logs:CreateLogStream.
 */
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { z } from 'zod';
import { defineSink, type AuditSink, type SinkBatch, type SinkContext } from '../../core/plugin.ts';
import { AirlockError } from '../../core/errors.ts';
import { isAfter, packCalls, toEvents, type StreamPosition } from './events.ts';
import { locateStream } from './position.ts';
import { putEvents, type StreamState } from './put.ts';

const DEFAULT_MAX_BATCH = 10_000;

export const cloudwatchSinkSchema = z.strictObject({
  type: z.literal('cloudwatch'),
  logGroup: z.string().regex(/^[.\-_/#A-Za-z0-9]{1,512}$/, 'expected a CloudWatch Logs group name'),
  logStream: z.string().regex(/^[^:*]{1,512}$/, 'expected a CloudWatch Logs stream name (no ":" or "*")'),
  region: z.string().min(1).optional(),
  /** Create the group and stream when missing (default true). */
  create: z.boolean().optional(),
});

export type CloudWatchSinkConfig = z.infer<typeof cloudwatchSinkSchema>;

export async function createCloudWatchSink(config: CloudWatchSinkConfig, ctx: SinkContext): Promise<AuditSink> {
  const region = config.region ?? ctx.aws.region;
  const client = new CloudWatchLogsClient({
    region,
    endpoint: ctx.aws.endpoint('logs', region),
    credentials: () => ctx.aws.credentials(),
    maxAttempts: 3,
    retryMode: 'standard',
    // A hung connection must fail so the runner can retry, not block the sink forever.
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
  });
  const target = { logGroupName: config.logGroup, logStreamName: config.logStream, create: config.create ?? true };
  const state: StreamState = { logGroupName: config.logGroup, logStreamName: config.logStream, sequenceToken: undefined, lastTimestamp: 0 };
  /** What the stream holds; undefined until read, and again after any failed call. */
  let held: StreamPosition | undefined;

  async function resync(): Promise<StreamPosition> {
    const tail = await locateStream(client, target);
    state.lastTimestamp = Math.max(state.lastTimestamp, tail.lastTimestamp);
    if (tail.foreign > 0) {
      ctx.log.warn({ sink: 'cloudwatch', logGroup: config.logGroup, logStream: config.logStream, foreign: tail.foreign }, 'log stream holds events that are not airlock records');
    }
    held = tail.position;
    return tail.position;
  }

  return {
    async deliver(batch: SinkBatch): Promise<void> {
      if (batch.records.length !== batch.lines.length) {
        throw new AirlockError('INTERNAL', 'cloudwatch sink: batch records and lines differ in length');
      }
      try {
        const from = held ?? (await resync());
        const events = toEvents(batch.records, batch.lines, { previousTimestamp: state.lastTimestamp, now: Date.now() }).filter((e) => isAfter(e, from));
        for (const call of packCalls(events)) {
          await putEvents(client, state, call);
          const last = call[call.length - 1];
          if (last) held = { seq: last.seq, part: last.part };
        }
        const skipped = batch.records.length - new Set(events.map((e) => e.seq)).size;
        if (skipped > 0) ctx.log.info({ sink: 'cloudwatch', skipped }, 'records already in the log stream were skipped');
      } catch (e) {
        // The failed call may have been stored anyway: learn the stream's tail again.
        held = undefined;
        throw e;
      }
    },
    async close(): Promise<void> {
      client.destroy();
    },
  };
}

export default defineSink({
  type: 'cloudwatch',
  schema: cloudwatchSinkSchema,
  maxBatch: DEFAULT_MAX_BATCH,
  cursorId: (config) => `cloudwatch:${config.logGroup}/${config.logStream}`,
  create: (config, ctx) => createCloudWatchSink(config, ctx),
});
