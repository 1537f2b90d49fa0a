/**
 * Issue 11 item 4: unauthenticated noise cannot crowd out real work. 3,000 bad HTTP
 * requests (control API, DynamoDB front) and 1,500 malformed Postgres handshakes from one
 * address, with the spool capped at 400 KB: afterwards a valid agent still gets a grant and
 * uses it (its grant and request records are written), /metrics counts the failures, and
 * the `auth.failed` records plus the summaries' counts account for every failure.
 * Upstream is the embedded dynalite; the Postgres upstream is never reached.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../dev/dynamodb.ts';
import { startTestGateway, type TestGateway } from '../harness/gateway.ts';

const dir = mkdtempSync(join(tmpdir(), 'airlock-flood-'));
let dynamo: EmbeddedDynamo;
let gw: TestGateway;

before(async () => {
  dynamo = await startEmbeddedDynamo({ dir: join(dir, 'dynamodb') });
  gw = await startTestGateway({
    config: {
      gateway: { postgres: { listen: '127.0.0.1:0', tls: 'disable' } },
      aws: { region: 'us-east-1', endpoints: { dynamodb: dynamo.endpoint } },
      resources: {
        orders: { type: 'dynamodb', region: 'us-east-1', tables: ['orders'], access: { read: ['GetItem'] } },
        reporting: { type: 'postgres', host: '127.0.0.1', port: 1, database: 'reporting', tls: 'disable', auth: { type: 'password', passwordEnv: 'AIRLOCK_FLOOD_PW' }, access: { read: { user: 'agent_ro' } } },
      },
      policies: [{ agents: ['local:bot'], resources: ['orders'], access: ['read'], maxTtl: '15m' }],
      audit: { durability: 'buffered', spoolMaxBytes: 400 * 1024, authFailureSummaryInterval: '3s' },
    },
    env: { AWS_ACCESS_KEY_ID: 'AKIAAIRLOCKDEVLOCAL0', AWS_SECRET_ACCESS_KEY: 'local-only', AIRLOCK_FLOOD_PW: 'unused' },
  });
});
after(async () => {
  await gw?.close();
  await dynamo?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** One malformed startup packet (a length no startup message has), then wait for the close. */
function malformedHandshake(port: number): Promise<void> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.write(Buffer.from([0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef])));
    s.on('data', () => {});
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.setTimeout(5_000, () => s.destroy());
  });
}

async function inBatches(n: number, width: number, one: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < n; i += width) await Promise.all(Array.from({ length: Math.min(width, n - i) }, (_, j) => one(i + j)));
}

test('3,000 bad HTTP requests and 1,500 malformed handshakes: a valid agent still gets a grant; every failure is accounted for', async () => {
  const pgPort = Number(gw.listening['postgres']![0]!.split(':').at(-1));
  const probe = await gw.requestGrant(await gw.tokenFor('bot'), { resource: 'orders', access: 'read', ttl: '5m', task: 'endpoint probe' });
  assert.equal(probe.status, 201, JSON.stringify(probe.body));
  const endpoint = String(probe.body.connect?.['endpoint']);
  const bad = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: probe.body.id!, secretAccessKey: 'wrong' }, maxAttempts: 1 });

  const floodStarted = Date.now();
  await inBatches(1_500, 25, () => gw.api('GET', '/v1/grants', 'not-a-token'));
  await inBatches(1_500, 25, () => bad.send(new GetItemCommand({ TableName: 'orders', Key: { id: { S: 'x' } } })).catch(() => undefined));
  await inBatches(1_500, 25, () => malformedHandshake(pgPort));
  bad.destroy();

  const health = await fetch(`${gw.url}/healthz`).then((r) => r.json() as Promise<{ status: string }>);
  assert.equal(health.status, 'ok', 'the spool is not full');
  const g = await gw.requestGrant(await gw.tokenFor('bot'), { resource: 'orders', access: 'read', ttl: '5m', task: 'after the flood' });
  assert.equal(g.status, 201, JSON.stringify(g.body));
  const good = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: g.body.id!, secretAccessKey: g.body.secret! }, maxAttempts: 1 });
  const item = await good.send(new GetItemCommand({ TableName: 'orders', Key: { id: { S: 'o-1001' } } }));
  assert.equal(item.$metadata.httpStatusCode, 200);
  good.destroy();
  assert.ok(gw.auditRecords().some((r) => r.type === 'aws.request' && r.grant === g.body.id && r.outcome === 'ok'), 'the agent\'s request is recorded');

  const metrics = await fetch(`${gw.url}/metrics`).then((r) => r.text());
  const seen = Number(/airlock_auth_failures_seen_total (\d+)/.exec(metrics)?.[1]);
  assert.ok(seen >= 4_500, `every failure counted (${seen})`);

  // Summaries are written when each source's interval ends: wait until they account for all.
  const deadline = Date.now() + 20_000;
  let full = 0;
  let summarized = 0;
  let summaries: ReturnType<TestGateway['auditRecords']> = [];
  while (Date.now() < deadline) {
    full = gw.auditRecords().filter((r) => r.type === 'auth.failed').length;
    summaries = gw.auditRecords().filter((r) => r.type === 'auth.failed.summary');
    summarized = summaries.reduce((n, r) => n + Number(r.data?.['count']), 0);
    if (full + summarized >= seen) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(full + summarized, seen, `auth.failed (${full}) + summaries (${summarized}) = failures (${seen})`);
  // One source: at most 20 in full per 3 s interval, however long the flood took under load.
  const intervals = Math.ceil((Date.now() - floodStarted) / 3_000) + 1;
  assert.ok(summarized > 0 && full <= 20 * intervals, `few failures in full (${full} over ${intervals} intervals)`);
  assert.ok(summaries.every((s) => s.data?.['source'] === '127.0.0.1'));
  const codes = new Set(summaries.flatMap((s) => Object.keys(s.data?.['codes'] as Record<string, number>)));
  // Past the budget the DynamoDB failures are answered (and counted) as RATE_LIMITED; the
  // malformed handshakes are BAD_REQUEST: all three fronts are in the summaries.
  assert.deepEqual([...codes].sort(), ['BAD_IDENTITY', 'BAD_REQUEST', 'RATE_LIMITED']);
  assert.match(metrics, /airlock_auth_failures_recorded_total\{as="full"\} \d+/);
});
