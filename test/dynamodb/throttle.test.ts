/**
 * An address that keeps failing authentication has its further failures answered as
 * throttling after 100 a minute, yet a request whose signature verifies is never refused
 * (one client's bad signatures cannot lock out every grant behind the same address), and
 * the audit accounts for every failure: the first ones in full, the rest in a summary.
 * Upstream is the embedded dynalite: nothing here needs AWS.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DynamoDBClient, ExecuteStatementCommand, GetItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../dev/dynamodb.ts';
import { startTestGateway, type TestGateway } from '../harness/gateway.ts';

const dir = mkdtempSync(join(tmpdir(), 'airlock-throttle-'));
let dynamo: EmbeddedDynamo;
let gw: TestGateway;

before(async () => {
  dynamo = await startEmbeddedDynamo({ dir: join(dir, 'dynamodb') });
  gw = await startTestGateway({
    config: {
      aws: { region: 'us-east-1', endpoints: { dynamodb: dynamo.endpoint } },
      resources: { orders: { type: 'dynamodb', region: 'us-east-1', tables: ['orders'], access: { read: ['GetItem'] } } },
      policies: [{ agents: ['local:bot'], resources: ['orders'], access: ['read'], maxTtl: '15m' }],
      audit: { durability: 'buffered', authFailureSummaryInterval: '2s' },
    },
    env: { AWS_ACCESS_KEY_ID: 'AKIAAIRLOCKDEVLOCAL0', AWS_SECRET_ACCESS_KEY: 'local-only' },
  });
});
after(async () => {
  await gw?.close();
  await dynamo?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The summaries once they account for `total` failures (they are written when the interval ends). */
async function eventuallySummaries(total: number) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const full = gw.auditRecords().filter((r) => r.type === 'auth.failed').length;
    const summaries = gw.auditRecords().filter((r) => r.type === 'auth.failed.summary');
    if (full + summaries.reduce((n, r) => n + Number(r.data?.['count']), 0) >= total || Date.now() > deadline) return summaries;
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('a denied aws.request records what was asked (issue 11 item 7)', () => {
  it('the same description as an allowed one: operation, tables, statements', async () => {
    const g = await gw.requestGrant(await gw.tokenFor('bot'), { resource: 'orders', access: 'read', ttl: '5m', task: 'denied description' });
    assert.equal(g.status, 201);
    const c = new DynamoDBClient({ endpoint: String(g.body.connect?.['endpoint']), region: 'us-east-1', credentials: { accessKeyId: g.body.id!, secretAccessKey: g.body.secret! }, maxAttempts: 1 });
    await assert.rejects(c.send(new ScanCommand({ TableName: 'orders', FilterExpression: 'total > :t', ExpressionAttributeValues: { ':t': { N: '1' } } })), /not allowed/);
    await assert.rejects(c.send(new GetItemCommand({ TableName: 'payroll', Key: { id: { S: 'x' } } })), /outside this grant/);
    await assert.rejects(c.send(new ExecuteStatementCommand({ Statement: 'SELECT * FROM "payroll" WHERE id = ?', Parameters: [{ S: 'x' }] })), /not allowed|outside/);
    c.destroy();
    const denied = gw.auditRecords().filter((r) => r.type === 'aws.request' && r.grant === g.body.id && r.outcome === 'denied');
    assert.equal(denied.length, 3);
    const [scan, get, statement] = denied;
    assert.equal(scan!.data?.['operation'], 'Scan');
    assert.deepEqual(scan!.data?.['tables'], ['orders']);
    assert.deepEqual(scan!.data?.['expressions'], { FilterExpression: 'total > :t' });
    assert.deepEqual(get!.data?.['tables'], ['payroll']);
    assert.match(String(get!.data?.['reason']), /payroll/);
    assert.equal(statement!.data?.['operation'], 'ExecuteStatement');
    assert.deepEqual(statement!.data?.['tables'], ['payroll']);
    assert.ok(JSON.stringify(statement!.data?.['statements']).includes('SELECT * FROM'), JSON.stringify(statement!.data));
  });
});

describe('failed-authentication budget per address', () => {
  it('throttles failures past 100 from an address, never a request that verifies, and accounts for each failure', async () => {
    const g = await gw.requestGrant(await gw.tokenFor('bot'), { resource: 'orders', access: 'read', ttl: '5m', task: 'throttle test' });
    assert.equal(g.status, 201);
    const endpoint = String(g.body.connect?.['endpoint']);
    const good = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: g.body.id!, secretAccessKey: g.body.secret! }, maxAttempts: 1 });
    await good.send(new GetItemCommand({ TableName: 'orders', Key: { id: { S: 'o-1001' } } }));

    const bad = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: g.body.id!, secretAccessKey: 'wrong' }, maxAttempts: 1 });
    const names: string[] = [];
    for (let i = 0; i < 105; i++) {
      await bad.send(new GetItemCommand({ TableName: 'orders', Key: { id: { S: 'o-1001' } } })).catch((e: unknown) => names.push((e as Error).name));
    }
    assert.deepEqual(names.slice(0, 100), Array(100).fill('InvalidSignatureException'));
    assert.deepEqual(names.slice(100), Array(5).fill('ThrottlingException'));
    // The right key from the same address works at once: failures are limited, not identities.
    const ok = await good.send(new GetItemCommand({ TableName: 'orders', Key: { id: { S: 'o-1001' } } }));
    assert.equal(ok.$metadata.httpStatusCode, 200);

    // Every one of the 105 failures is in the audit: in full, or counted in a summary.
    const summaries = await eventuallySummaries(105);
    const full = gw.auditRecords().filter((r) => r.type === 'auth.failed');
    assert.equal(full.length, 20, 'the first 20 of the interval in full');
    const counted = summaries.reduce((n, r) => n + Number(r.data?.['count']), 0);
    assert.equal(full.length + counted, 105);
    const codes: Record<string, number> = {};
    for (const r of summaries) for (const [k, v] of Object.entries(r.data?.['codes'] as Record<string, number>)) codes[k] = (codes[k] ?? 0) + v;
    assert.deepEqual(codes, { SIGNATURE_MISMATCH: 80, RATE_LIMITED: 5 });
    assert.equal((summaries[0]!.data?.['sample'] as Record<string, unknown>)['claimedId'], g.body.id);
    good.destroy();
    bad.destroy();
  });
});
