/**
 * Audit sinks through an outage, end to end: a real gateway with file, S3 and CloudWatch
 * sinks; agents get grants and run DynamoDB queries through it while the sinks' AWS is cut
 * off; the gateway is restarted in the middle of the outage; then AWS comes back.
 *
 * How the outage is made: moto keeps its state in memory only, so stopping and restarting
 * it would lose the bucket, the log group and airlock's IAM user. Instead the sinks reach
 * moto through the harness's TCP relay (`startMoto({ interruptible: true })`) and
 * `suspend()` closes that port and cuts every open connection, while moto itself (and the
 * DynamoDB upstream, which uses moto's direct port) stays up with auth enforced.
 *
 * Shown: the file sink keeps up during the outage (one sink's failure does not block
 * another), /metrics shows the lag and failures, and afterwards every seq is in S3 exactly
 * once after de-duplication and in CloudWatch exactly once, none lost, the S3 objects
 * verify, including the records written by the restarted gateway. A second test fills a
 * small spool during an outage: new grants are refused with a clear error and a record
 * says so, while every record already written is kept and delivered later.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client, CreateBucketCommand } from '@aws-sdk/client-s3';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { DynamoDBClient, CreateTableCommand, GetItemCommand, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import type { JWK } from 'jose';
import { startMoto, type Moto, type MotoKeys } from '../harness/moto.ts';
import { startTestGateway, eventually, type TestGateway } from '../harness/gateway.ts';
import type { AuditRecord } from '../../core/plugin.ts';
import { verifyAuditFiles } from '../../core/audit/verify.ts';
import { downloadObjects, fileSinkLines, gunzipLines, readLogEvents, reassemble } from './aws-sink-context.ts';

const REGION = 'us-east-1';
const AGENT = 'orders-bot';
const OPS = ['GetItem', 'PutItem', 'Scan'];

let moto: Moto;
let airlockUser: MotoKeys;
let s3Admin: S3Client;
let logsAdmin: CloudWatchLogsClient;
const temp: string[] = [];

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temp.push(dir);
  return dir;
}

before(async () => {
  moto = await startMoto({ interruptible: true });
  s3Admin = new S3Client({ region: REGION, endpoint: moto.directEndpoint, forcePathStyle: true, credentials: moto.adminKeys() });
  logsAdmin = new CloudWatchLogsClient({ region: REGION, endpoint: moto.directEndpoint, credentials: moto.adminKeys() });
  const ddb = new DynamoDBClient({ region: REGION, endpoint: moto.directEndpoint, credentials: moto.adminKeys() });
  await ddb.send(
    new CreateTableCommand({
      TableName: 'orders',
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  ddb.destroy();
  for (const Bucket of ['audit-outage', 'audit-full']) await s3Admin.send(new CreateBucketCommand({ Bucket }));
  // airlock's own identity: the DynamoDB operations it relays and what its sinks need.
  airlockUser = await moto.createUser('airlock-gateway', {
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: OPS.map((op) => `dynamodb:${op}`), Resource: '*' },
      { Effect: 'Allow', Action: ['s3:PutObject', 's3:AbortMultipartUpload'], Resource: '*' },
      { Effect: 'Allow', Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents', 'logs:GetLogEvents'], Resource: '*' },
    ],
  });
  await moto.enableAuth();
});

after(async () => {
  s3Admin?.destroy();
  logsAdmin?.destroy();
  await moto?.stop();
  for (const dir of temp) await rm(dir, { recursive: true, force: true });
});

function gatewayConfig(dataDir: string, audit: { bucket: string; logStream: string; spoolMaxBytes?: number }): Record<string, unknown> {
  return {
    gateway: { dataDir },
    aws: {
      region: REGION,
      // DynamoDB goes straight to moto; the sinks go through the relay the test cuts.
      endpoints: { dynamodb: moto.directEndpoint, s3: moto.endpoint, logs: moto.endpoint },
    },
    resources: {
      orders: { type: 'dynamodb', region: REGION, accountId: moto.accountId, tables: ['orders'], access: { rw: OPS } },
    },
    policies: [{ agents: [`local:${AGENT}`], resources: ['orders'], access: ['rw'], maxTtl: '15m' }],
    audit: {
      durability: 'strict',
      checkpointEvery: 25,
      ...(audit.spoolMaxBytes !== undefined ? { spoolMaxBytes: audit.spoolMaxBytes } : {}),
      sinks: [
        { type: 'file', path: join(dataDir, 'audit', 'audit.jsonl') },
        { type: 's3', bucket: audit.bucket, prefix: 'airlock/' },
        { type: 'cloudwatch', logGroup: '/airlock/outage', logStream: audit.logStream },
      ],
    },
  };
}

async function startGateway(dataDir: string, audit: { bucket: string; logStream: string; spoolMaxBytes?: number }): Promise<TestGateway> {
  return startTestGateway({
    dataDir,
    config: gatewayConfig(dataDir, audit),
    env: { AWS_ACCESS_KEY_ID: airlockUser.accessKeyId, AWS_SECRET_ACCESS_KEY: airlockUser.secretAccessKey, AWS_REGION: REGION },
  });
}

/** One agent task: a grant, then a write, a read and a scan through airlock. */
async function work(gw: TestGateway, n: number): Promise<void> {
  const token = await gw.tokenFor(AGENT);
  const res = await gw.requestGrant(token, { resource: 'orders', access: 'rw', ttl: '5m', task: `outage test task ${n}` });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const client = new DynamoDBClient({
    region: REGION,
    endpoint: String(res.body.connect?.['endpoint']),
    credentials: { accessKeyId: res.body.id!, secretAccessKey: res.body.secret! },
    maxAttempts: 1,
  });
  try {
    await client.send(new PutItemCommand({ TableName: 'orders', Item: { id: { S: `o-${n}` }, n: { N: String(n) } } }));
    const got = await client.send(new GetItemCommand({ TableName: 'orders', Key: { id: { S: `o-${n}` } } }));
    assert.equal(got.Item?.['n']?.N, String(n));
    await client.send(new ScanCommand({ TableName: 'orders', Limit: 5 }));
  } finally {
    client.destroy();
  }
}

/** `airlock_audit_sink_*{sink="…"} value` lines of /metrics, by metric and sink id. */
async function sinkMetrics(gw: TestGateway): Promise<Record<string, Record<string, number>>> {
  const text = await (await fetch(new URL('/metrics', gw.url))).text();
  const out: Record<string, Record<string, number>> = {};
  for (const m of text.matchAll(/^(airlock_audit_sink_\w+)\{sink="([^"]+)"\} (\d+)$/gm)) {
    (out[m[1]!] ??= {})[m[2]!] = Number(m[3]);
  }
  return out;
}

function sinkIds(dataDir: string, bucket: string, logStream: string): { file: string; s3: string; cw: string } {
  return { file: `file:${join(dataDir, 'audit', 'audit.jsonl')}`, s3: `s3:${bucket}/airlock/`, cw: `cloudwatch:/airlock/outage/${logStream}` };
}

async function allDelivered(gw: TestGateway, timeoutMs: number): Promise<void> {
  await eventually(
    async () => {
      const lag = (await sinkMetrics(gw))['airlock_audit_sink_lag'] ?? {};
      const values = Object.values(lag);
      return values.length === 3 && values.every((v) => v === 0) ? true : undefined;
    },
    timeoutMs,
    'every sink to catch up',
  );
}

/** The gateway's published checkpoint key (what `airlock audit verify` is given). */
async function publicKeys(dataDir: string): Promise<JWK[]> {
  return [JSON.parse(await readFile(join(dataDir, 'keys', 'gateway.pub.jwk'), 'utf8')) as JWK];
}

/** S3 records de-duplicated by seq (copies must be identical), in seq order. */
function dedupe(lines: readonly string[]): { records: AuditRecord[]; duplicates: number } {
  const bySeq = new Map<number, string>();
  let duplicates = 0;
  for (const line of lines) {
    const seq = (JSON.parse(line) as AuditRecord).seq;
    const prior = bySeq.get(seq);
    if (prior !== undefined) {
      assert.equal(line, prior, `two different records with seq ${seq}`);
      duplicates++;
    } else bySeq.set(seq, line);
  }
  const records = [...bySeq.entries()].sort(([a], [b]) => a - b).map(([, l]) => JSON.parse(l) as AuditRecord);
  return { records, duplicates };
}

describe('audit sinks through an AWS outage and a gateway restart', () => {
  it('delivers every record exactly once per seq, none lost', async () => {
    const dataDir = await tempDir('airlock-outage-');
    const target = { bucket: 'audit-outage', logStream: 'gw-outage' };
    const ids = sinkIds(dataDir, target.bucket, target.logStream);

    let gw = await startGateway(dataDir, target);
    let closed = false;
    try {
      for (let i = 0; i < 3; i++) await work(gw, i);
      await allDelivered(gw, 30_000);

      await moto.suspend();
      for (let i = 3; i < 8; i++) await work(gw, i);
      // The file sink keeps up; the AWS sinks fall behind and count failures.
      const during = await eventually(
        async () => {
          const m = await sinkMetrics(gw);
          const lag = m['airlock_audit_sink_lag'] ?? {};
          const failures = m['airlock_audit_sink_failures_total'] ?? {};
          return lag[ids.file] === 0 && (lag[ids.s3] ?? 0) > 0 && (lag[ids.cw] ?? 0) > 0 && (failures[ids.s3] ?? 0) > 0 && (failures[ids.cw] ?? 0) > 0 ? m : undefined;
        },
        20_000,
        'file sink current, AWS sinks lagging with failures',
      );
      assert.ok(during);

      // Gateway restart in the middle of the outage.
      await gw.close({ keepDataDir: true });
      closed = true;
      gw = await startGateway(dataDir, target);
      closed = false;
      for (let i = 8; i < 12; i++) await work(gw, i);
      const lagAfterRestart = (await sinkMetrics(gw))['airlock_audit_sink_lag'] ?? {};
      assert.ok((lagAfterRestart[ids.s3] ?? 0) > 0, 'the restarted gateway resumes the S3 backlog from its cursor');

      await moto.resume();
      // Retry back-off may have grown during the outage (capped at 30 s).
      await allDelivered(gw, 60_000);
      await gw.close({ keepDataDir: true });
      closed = true;
    } finally {
      if (!closed) await gw.close({ keepDataDir: true });
      await moto.resume();
    }

    const fileLines = await fileSinkLines(join(dataDir, 'audit', 'audit.jsonl'));
    const fileRecords = fileLines.map((l) => JSON.parse(l) as AuditRecord);
    const lastSeq = fileRecords.at(-1)!.seq;
    assert.deepEqual(fileRecords.map((r) => r.seq), Array.from({ length: lastSeq }, (_, i) => i + 1), 'file sink: 1..last, in order');
    assert.ok(fileRecords.filter((r) => r.type === 'gateway.started').length === 2, 'two gateway runs in one chain');
    assert.ok(fileRecords.filter((r) => r.type === 'aws.request').length >= 36, 'the queries were recorded');

    // S3: every seq exactly once after de-duplication, identical to the file sink.
    const downloads = await tempDir('airlock-outage-s3-');
    const paths = await downloadObjects(s3Admin, target.bucket, 'airlock/', downloads);
    const s3 = dedupe(await gunzipLines(paths));
    assert.deepEqual(s3.records.map((r) => JSON.stringify(r)), fileRecords.map((r) => JSON.stringify(r)));
    const verified = await verifyAuditFiles(paths, { publicKeys: await publicKeys(dataDir) });
    assert.equal(verified.failure, undefined);
    assert.equal(verified.ok, true);
    assert.equal(verified.fromGenesis, true);
    assert.equal(verified.records, lastSeq);
    assert.equal(verified.duplicates, s3.duplicates);
    assert.equal(verified.unsignedTail, 0);

    // CloudWatch: the sink de-duplicates itself, so the stream is exactly the file sink.
    const cw = reassemble((await readLogEvents(logsAdmin, '/airlock/outage', target.logStream)).map((e) => e.message ?? ''));
    assert.deepEqual(cw, fileLines);
  });

  it('a full spool refuses new grants with a clear error and keeps every record', async () => {
    const dataDir = await tempDir('airlock-full-');
    const target = { bucket: 'audit-full', logStream: 'gw-full', spoolMaxBytes: 16 * 1024 };
    const gw = await startGateway(dataDir, target);
    let refused: { status: number; body: Record<string, unknown> } | undefined;
    const token = await gw.tokenFor(AGENT);
    const earlier = await gw.requestGrant(token, { resource: 'orders', access: 'rw', ttl: '5m', task: 'granted before the spool filled' });
    try {
      assert.equal(earlier.status, 201);
      await moto.suspend();
      for (let i = 0; i < 200 && !refused; i++) {
        const res = await gw.requestGrant(token, { resource: 'orders', access: 'rw', ttl: '5m', task: `fill the spool ${i} ${'x'.repeat(200)}` });
        if (res.status !== 201) refused = res;
      }
      assert.ok(refused, 'the spool filled up');
      assert.equal(refused.status, 503);
      assert.match(String(refused.body.error), /audit spool is full/);
      const health = await fetch(new URL('/healthz', gw.url));
      await health.arrayBuffer();
      assert.notEqual(health.status, 200, 'healthz reports the full spool');
      assert.match(await (await fetch(new URL('/metrics', gw.url))).text(), /^airlock_audit_spool_full 1$/m);
      // A request on a grant issued before is still recorded (the limit is soft: nothing runs unrecorded).
      const client = new DynamoDBClient({
        region: REGION,
        endpoint: String(earlier.body.connect?.['endpoint']),
        credentials: { accessKeyId: earlier.body.id!, secretAccessKey: earlier.body.secret! },
        maxAttempts: 1,
      });
      await client.send(new PutItemCommand({ TableName: 'orders', Item: { id: { S: 'while-full' } } }));
      client.destroy();

      await moto.resume();
      await allDelivered(gw, 60_000);
      // Once the sinks have caught up, delivered segments are dropped and the spool is no longer full.
      let recovered = 0;
      for (let i = 0; i < 100 && recovered !== 201; i++) {
        recovered = (await gw.requestGrant(token, { resource: 'orders', access: 'rw', ttl: '5m', task: 'after the sinks caught up' })).status;
        if (recovered !== 201) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(recovered, 201, 'grants are issued again once the spool drains');
    } finally {
      await moto.resume();
      await gw.close({ keepDataDir: true });
    }

    const fileLines = await fileSinkLines(join(dataDir, 'audit', 'audit.jsonl'));
    const records = fileLines.map((l) => JSON.parse(l) as AuditRecord);
    assert.deepEqual(records.map((r) => r.seq), Array.from({ length: records.length }, (_, i) => i + 1));
    const denial = records.find((r) => r.type === 'grant.denied' && (r.data as { rule?: string } | undefined)?.rule === 'audit');
    assert.ok(denial, 'a record says the grant was refused because the spool was full');
    assert.ok(records.some((r) => r.type === 'aws.request' && r.grant === earlier.body.id && r.seq > denial.seq), 'the request made while full is recorded');
    const downloads = await tempDir('airlock-full-s3-');
    const s3 = dedupe(await gunzipLines(await downloadObjects(s3Admin, target.bucket, 'airlock/', downloads)));
    assert.deepEqual(s3.records.map((r) => JSON.stringify(r)), records.map((r) => JSON.stringify(r)), 'S3 got every record written before and while full');
    const cw = reassemble((await readLogEvents(logsAdmin, '/airlock/outage', target.logStream)).map((e) => e.message ?? ''));
    assert.deepEqual(cw, fileLines);
  });
});
