/**
 * An address that keeps failing authentication is refused unheard after 100 failures a
 * minute, and the audit notes the block once instead of recording every further attempt.
 * Upstream is the embedded dynalite: nothing here needs AWS.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
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
      audit: { durability: 'buffered' },
    },
    env: { AWS_ACCESS_KEY_ID: 'AKIAAIRLOCKDEVLOCAL0', AWS_SECRET_ACCESS_KEY: 'local-only' },
  });
});
after(async () => {
  await gw?.close();
  await dynamo?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('failed-authentication budget per address', () => {
  it('refuses an address after 100 failures and records the block once', async () => {
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
    // The address is refused even with the right key until the minute passes.
    await assert.rejects(good.send(new GetItemCommand({ TableName: 'orders', Key: { id: { S: 'o-1001' } } })), (e: unknown) => (e as Error).name === 'ThrottlingException');

    const failed = gw.auditRecords().filter((r) => r.type === 'auth.failed');
    assert.equal(failed.filter((r) => r.data?.['code'] === 'SIGNATURE_MISMATCH').length, 100);
    assert.equal(failed.filter((r) => r.data?.['code'] === 'RATE_LIMITED').length, 1);
    good.destroy();
    bad.destroy();
  });
});
