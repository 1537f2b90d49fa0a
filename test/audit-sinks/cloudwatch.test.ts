/**
 * CloudWatch Logs sink against a real moto with signature and IAM enforcement on (airlock's
 * identity is a moto IAM user allowed only the four actions the sink needs), plus unit
 * checks of the call packing and of the failure forms moto cannot produce (throttling,
 * sequence tokens, rejected events) through a scripted client.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  PutLogEventsCommand,
  ThrottlingException,
  InvalidSequenceTokenException,
  DataAlreadyAcceptedException,
  type OutputLogEvent,
} from '@aws-sdk/client-cloudwatch-logs';
import { startMoto, type Moto, type MotoKeys } from '../harness/moto.ts';
import cloudwatchSink, { cloudwatchSinkSchema, createCloudWatchSink } from '../../audit-sinks/cloudwatch/index.ts';
import {
  EVENT_OVERHEAD_BYTES,
  MAX_CALL_BYTES,
  MAX_CALL_EVENTS,
  MAX_EVENT_BYTES,
  packCalls,
  positionOf,
  toEvents,
  type LogEvent,
} from '../../audit-sinks/cloudwatch/events.ts';
import { putEvents, rejectedIndexes, type LogsSender, type StreamState } from '../../audit-sinks/cloudwatch/put.ts';
import type { AuditRecord } from '../../core/plugin.ts';
import { verifyRecords } from '../../core/audit/verify.ts';
import { RecordSource, drainBesideFileSink, readLogEvents, reassemble, sinkContext, slice } from './aws-sink-context.ts';
import { TempDirs, makeKey } from '../audit/helpers.ts';
import { runSinkConformance } from './conformance.ts';

const SINK_POLICY = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents', 'logs:GetLogEvents'], Resource: '*' },
  ],
};
const DAY_MS = 24 * 3600 * 1000;

// One moto for the whole file (this suite and the conformance suite below).
let moto: Moto;
let sinkKeys: MotoKeys;
let admin: CloudWatchLogsClient;
const dirs = new TempDirs();

before(async () => {
  moto = await startMoto({ interruptible: true });
  admin = new CloudWatchLogsClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: moto.adminKeys() });
  await admin.send(new CreateLogGroupCommand({ logGroupName: '/airlock/existing' }));
  sinkKeys = await moto.createUser('airlock-logs', SINK_POLICY);
  await moto.enableAuth();
});

after(async () => {
  admin?.destroy();
  await moto?.stop();
  await dirs.cleanup();
});

const readAll = (logGroupName: string, logStreamName: string): Promise<OutputLogEvent[]> => readLogEvents(admin, logGroupName, logStreamName);

describe('cloudwatch audit sink (moto, auth enforced)', () => {
  it('drains a real audit pipeline: same lines as the file sink, and they verify', async () => {
    const dataDir = await dirs.make();
    const key = makeKey();
    const ctx = sinkContext({ endpoint: moto.endpoint, keys: sinkKeys, gatewayId: 'gw-e2e', dataDir });
    const fileLines = await drainBesideFileSink({ dataDir, key, ctx, sink: cloudwatchSink, config: { type: 'cloudwatch', logGroup: '/airlock/e2e', logStream: 'gw-e2e' } });
    const lines = reassemble((await readAll('/airlock/e2e', 'gw-e2e')).map((e) => e.message ?? ''));
    assert.deepEqual(lines, fileLines, 'CloudWatch holds the file sink\'s lines, same order and count');
    const result = await verifyRecords(lines.map((l) => JSON.parse(l) as unknown), { publicKeys: [key.publicJwk], gatewayId: 'gw-e2e' });
    assert.equal(result.failure, undefined);
    assert.equal(result.fromGenesis, true);
    assert.equal(result.records, fileLines.length);
    assert.equal(result.unsignedTail, 0);
  });


  it('validates its config strictly and names its cursor', () => {
    assert.equal(cloudwatchSinkSchema.safeParse({ type: 'cloudwatch', logGroup: '/airlock/audit', logStream: 'gateway-1' }).success, true);
    assert.equal(cloudwatchSinkSchema.safeParse({ type: 'cloudwatch', logGroup: '/airlock/audit', logStream: 'a:b' }).success, false);
    assert.equal(cloudwatchSinkSchema.safeParse({ type: 'cloudwatch', logGroup: '/airlock/audit', logStream: 'g', extra: 1 }).success, false);
    assert.equal(cloudwatchSink.cursorId({ type: 'cloudwatch', logGroup: '/airlock/audit', logStream: 'gateway-1' } as never), 'cloudwatch:/airlock/audit/gateway-1');
  });

  it('creates group and stream, and stores every record once, in order', async () => {
    const source = new RecordSource();
    const sink = await createCloudWatchSink({ type: 'cloudwatch', logGroup: '/airlock/audit', logStream: 'gw-1' }, sinkContext({ endpoint: moto.endpoint, keys: sinkKeys }));
    const batches = [source.next(5), source.next(1), source.next(20)];
    for (const b of batches) await sink.deliver(b);
    // At-least-once from the runner: a batch handed over again is skipped, not duplicated.
    await sink.deliver(batches[1]!);
    await sink.close?.();
    const events = await readAll('/airlock/audit', 'gw-1');
    assert.deepEqual(events.map((e) => e.message), source.lines);
    const stamps = events.map((e) => e.timestamp ?? 0);
    assert.deepEqual([...stamps].sort((a, b) => a - b), stamps, 'timestamps in order');
  });

  it('a restarted sink resumes after what the stream holds (overlapping batch)', async () => {
    const source = new RecordSource();
    const ctx = sinkContext({ endpoint: moto.endpoint, keys: sinkKeys });
    const config = { type: 'cloudwatch' as const, logGroup: '/airlock/existing', logStream: 'restart' };
    const all = source.next(15);
    const first = await createCloudWatchSink(config, ctx);
    await first.deliver(slice(all, 0, 10));
    await first.close?.();
    // The cursor lagged behind the stream (crash after the put, before the cursor moved).
    const second = await createCloudWatchSink(config, ctx);
    await second.deliver(slice(all, 4, 15));
    await second.close?.();
    const events = await readAll(config.logGroup, config.logStream);
    assert.deepEqual(events.map((e) => e.message), source.lines);
  });

  it('after a failed call, re-reads the stream and skips what it holds', async () => {
    const source = new RecordSource();
    const sink = await createCloudWatchSink({ type: 'cloudwatch', logGroup: '/airlock/audit', logStream: 'outage' }, sinkContext({ endpoint: moto.endpoint, keys: sinkKeys }));
    const all = source.next(12);
    await sink.deliver(slice(all, 0, 6));
    await moto.suspend();
    try {
      await assert.rejects(sink.deliver(slice(all, 6, 12)));
    } finally {
      await moto.resume();
    }
    // Hand over more than the cursor says, as after an ambiguous failure.
    await sink.deliver(slice(all, 3, 12));
    await sink.close?.();
    const events = await readAll('/airlock/audit', 'outage');
    assert.deepEqual(events.map((e) => e.message), source.lines);
  });

  it('splits an oversize record into fragments that reassemble exactly, and resumes mid-record', async () => {
    const source = new RecordSource();
    const big = 'é"\\x'.repeat(120_000) + '😀'.repeat(50_000);
    const batch = source.next(3, { data: (seq) => (seq === 2 ? { sql: big } : { sql: `select ${seq}` }) });
    assert.ok(Buffer.byteLength(batch.lines[1]!) > MAX_EVENT_BYTES * 3);
    const sink = await createCloudWatchSink({ type: 'cloudwatch', logGroup: '/airlock/audit', logStream: 'big' }, sinkContext({ endpoint: moto.endpoint, keys: sinkKeys }));
    await sink.deliver(batch);
    await sink.deliver(batch);
    const events = await readAll('/airlock/audit', 'big');
    assert.ok(events.length > 4, `record 2 is split (${events.length} events)`);
    for (const e of events) assert.ok(Buffer.byteLength(e.message ?? '') + EVENT_OVERHEAD_BYTES <= MAX_EVENT_BYTES);
    assert.deepEqual(reassemble(events.map((e) => e.message ?? '')), source.lines);

    // A stream that stopped inside a fragmented record is completed, not restarted.
    const events2 = toEvents(batch.records, batch.lines, { previousTimestamp: 0, now: Date.now() });
    await admin.send(new CreateLogStreamCommand({ logGroupName: '/airlock/audit', logStreamName: 'big-partial' }));
    await admin.send(
      new PutLogEventsCommand({
        logGroupName: '/airlock/audit',
        logStreamName: 'big-partial',
        logEvents: events2.slice(0, 3).map((e) => ({ timestamp: e.timestamp, message: e.message })),
      }),
    );
    assert.deepEqual(positionOf(events2[2]!.message), { seq: 2, part: 2 });
    const resumed = await createCloudWatchSink({ type: 'cloudwatch', logGroup: '/airlock/audit', logStream: 'big-partial', create: false }, sinkContext({ endpoint: moto.endpoint, keys: sinkKeys }));
    await resumed.deliver(slice(batch, 1));
    const partial = await readAll('/airlock/audit', 'big-partial');
    assert.deepEqual(partial.map((e) => e.message), events2.map((e) => e.message));
  });

  it('stamps old records inside the accepted window and keeps time order when the clock steps back', async () => {
    const source = new RecordSource();
    const old = source.next(3, { at: new Date(Date.now() - 20 * DAY_MS) });
    const now = source.next(2, { at: new Date() });
    const back = source.next(2, { at: new Date(Date.now() - 60_000) });
    const sink = await createCloudWatchSink({ type: 'cloudwatch', logGroup: '/airlock/audit', logStream: 'clock' }, sinkContext({ endpoint: moto.endpoint, keys: sinkKeys }));
    // One batch, so one PutLogEvents call that must be in time order.
    await sink.deliver({ records: [old, now, back].flatMap((b) => b.records), lines: [old, now, back].flatMap((b) => b.lines) });
    const events = await readAll('/airlock/audit', 'clock');
    assert.deepEqual(events.map((e) => e.message), source.lines, 'nothing rejected as too old, nothing out of order');
    const stamps = events.map((e) => e.timestamp ?? 0);
    // Old records keep an old stamp (clamped to the 14-day window), not the delivery time.
    assert.ok(stamps[0]! > Date.now() - 14 * DAY_MS && stamps[0]! < Date.now() - 13 * DAY_MS, `old record stamped ${new Date(stamps[0]!).toISOString()}`);
    assert.ok(stamps[6]! >= stamps[4]!, 'the record after the clock step is not stamped earlier');
  });

  it('fails clearly when the stream is missing and create is false, or the key is wrong', async () => {
    const source = new RecordSource();
    const batch = source.next(1);
    const noCreate = await createCloudWatchSink(
      { type: 'cloudwatch', logGroup: '/airlock/missing', logStream: 's', create: false },
      sinkContext({ endpoint: moto.endpoint, keys: sinkKeys }),
    );
    await assert.rejects(noCreate.deliver(batch), /does not exist and create is false/);
    const wrong = await createCloudWatchSink(
      { type: 'cloudwatch', logGroup: '/airlock/audit', logStream: 'wrong' },
      sinkContext({ endpoint: moto.endpoint, keys: { accessKeyId: sinkKeys.accessKeyId, secretAccessKey: 'nope' } }),
    );
    // moto answers JSON services' auth errors in XML, which the SDK cannot parse: look at the status.
    await assert.rejects(wrong.deliver(batch), (e: Error & { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 403);
    const noCreateRights = await moto.createUser('airlock-logs-nocreate', {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['logs:PutLogEvents', 'logs:GetLogEvents'], Resource: '*' }],
    });
    const denied = await createCloudWatchSink(
      { type: 'cloudwatch', logGroup: '/airlock/denied', logStream: 's' },
      sinkContext({ endpoint: moto.endpoint, keys: noCreateRights }),
    );
    await assert.rejects(denied.deliver(batch), (e: Error & { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode !== undefined && e.$metadata.httpStatusCode >= 400);
  });
});

let conformanceRun = 0;
runSinkConformance('cloudwatch (moto, auth enforced)', async () => {
  const logStream = `conformance-${++conformanceRun}`;
  const sink = await createCloudWatchSink({ type: 'cloudwatch', logGroup: '/airlock/conformance', logStream }, sinkContext({ endpoint: moto.endpoint, keys: sinkKeys }));
  return {
    sink,
    readBack: async (): Promise<AuditRecord[]> =>
      reassemble((await readAll('/airlock/conformance', logStream)).map((e) => e.message ?? '')).map((l) => JSON.parse(l) as AuditRecord),
    cleanup: async () => undefined,
  };
});

describe('cloudwatch call packing and failure forms', () => {
  function events(n: number, bytes: number, step = 0): LogEvent[] {
    return Array.from({ length: n }, (_, i) => ({ seq: i + 1, part: 1, parts: 1, timestamp: 1_000 + i * step, message: 'x'.repeat(bytes), bytes }));
  }

  it('keeps every call within 10,000 events, 1 MiB and 24 h', () => {
    const many = packCalls(events(25_000, 10));
    assert.deepEqual(many.map((c) => c.length), [MAX_CALL_EVENTS, MAX_CALL_EVENTS, 5_000]);
    const heavy = packCalls(events(100, 100_000));
    for (const call of heavy) assert.ok(call.reduce((n, e) => n + e.bytes + EVENT_OVERHEAD_BYTES, 0) <= MAX_CALL_BYTES);
    assert.equal(heavy.flat().length, 100);
    assert.equal(heavy[0]!.length, 10);
    const spread = packCalls(events(5, 10, 10 * 3600 * 1000));
    assert.deepEqual(spread.map((c) => c.map((e) => e.seq)), [[1, 2, 3], [4, 5]]);
  });

  it('reads the rejected ranges of a call', () => {
    assert.deepEqual(rejectedIndexes(undefined, 4), []);
    assert.deepEqual(rejectedIndexes({ tooOldLogEventEndIndex: 1 }, 4), [0, 1]);
    assert.deepEqual(rejectedIndexes({ expiredLogEventEndIndex: 0, tooNewLogEventStartIndex: 3 }, 4), [0, 3]);
  });

  /** A client that answers PutLogEvents from a script and records what it was sent. */
  function scripted(script: Array<(input: PutLogEventsCommand['input']) => unknown>): LogsSender & { calls: PutLogEventsCommand['input'][] } {
    const calls: PutLogEventsCommand['input'][] = [];
    return {
      calls,
      send: (async (command: PutLogEventsCommand) => {
        calls.push(command.input);
        const step = script.shift();
        if (!step) throw new Error('unexpected call');
        const out = step(command.input);
        if (out instanceof Error) throw out;
        return out;
      }) as LogsSender['send'],
    };
  }

  function state(): StreamState {
    return { logGroupName: 'g', logStreamName: 's', sequenceToken: undefined, lastTimestamp: 0 };
  }

  const meta = { $metadata: {} };

  it('backs off on throttling and then succeeds', async () => {
    const client = scripted([
      () => new ThrottlingException({ message: 'slow down', ...meta }),
      () => new ThrottlingException({ message: 'slow down', ...meta }),
      () => ({ nextSequenceToken: 't1' }),
    ]);
    const s = state();
    await putEvents(client, s, events(3, 5));
    assert.equal(client.calls.length, 3);
    assert.equal(s.sequenceToken, 't1');
  });

  it('gives up after repeated throttling so the runner backs off', async () => {
    const client = scripted(Array.from({ length: 5 }, () => () => new ThrottlingException({ message: 'slow down', ...meta })));
    await assert.rejects(putEvents(client, state(), events(1, 5)), (e: Error) => e.name === 'ThrottlingException');
    assert.equal(client.calls.length, 5);
  });

  it('retries with the expected sequence token and takes DataAlreadyAccepted as stored', async () => {
    const client = scripted([
      () => new InvalidSequenceTokenException({ message: 'bad token', expectedSequenceToken: 'exp-1', ...meta }),
      (input) => (input.sequenceToken === 'exp-1' ? { nextSequenceToken: 'exp-2' } : new Error('token not used')),
      () => new DataAlreadyAcceptedException({ message: 'already', expectedSequenceToken: 'exp-3', ...meta }),
    ]);
    const s = state();
    await putEvents(client, s, events(2, 5));
    await putEvents(client, s, events(2, 5));
    assert.equal(s.sequenceToken, 'exp-3');
  });

  it('puts rejected events again at the current time, and fails if they are rejected again', async () => {
    const now = 5_000_000;
    const ok = scripted([() => ({ rejectedLogEventsInfo: { tooOldLogEventEndIndex: 1 } }), () => ({})]);
    await putEvents(ok, state(), events(4, 5), () => now);
    assert.deepEqual(ok.calls[1]!.logEvents?.map((e) => e.timestamp), [now, now]);
    assert.deepEqual(ok.calls[1]!.logEvents?.map((e) => e.message), ['xxxxx', 'xxxxx']);

    const bad = scripted([() => ({ rejectedLogEventsInfo: { tooNewLogEventStartIndex: 0 } }), () => ({ rejectedLogEventsInfo: { tooNewLogEventStartIndex: 0 } })]);
    await assert.rejects(putEvents(bad, state(), events(2, 5), () => now), /rejected events of seq 1\.\.2/);
  });
});
