/**
 * `airlock dev`'s DynamoDB path: the embedded dynalite with its seeded `orders` table, served
 * through the DynamoDB plugin, read by the aws CLI exactly as the README shows.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEmbeddedDynamo, SEED_TABLE, type EmbeddedDynamo } from '../../dev/dynamodb.ts';
import { startTestGateway, type TestGateway } from '../harness/gateway.ts';
import { aws, cliEnv, findAwsCli } from '../aws/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'airlock-dev-dynamo-'));
let dynamo: EmbeddedDynamo;
let gw: TestGateway;

before(async () => {
  dynamo = await startEmbeddedDynamo({ dir: join(dir, 'dynamodb') });
  gw = await startTestGateway({
    config: {
      aws: { region: 'us-east-1', endpoints: { dynamodb: dynamo.endpoint } },
      resources: { orders: { type: 'dynamodb', region: 'us-east-1', tables: [SEED_TABLE], access: { read: ['GetItem', 'Scan', 'Query', 'DescribeTable'] } } },
      policies: [{ agents: ['local:demo-agent'], resources: ['orders'], access: ['read'], maxTtl: '15m' }],
    },
    // dynalite checks no signature; airlock still signs, with a local identity.
    env: { AWS_ACCESS_KEY_ID: 'AKIAAIRLOCKDEVLOCAL0', AWS_SECRET_ACCESS_KEY: 'airlock-dev-local-secret-not-a-real-key' },
  });
});
after(async () => {
  await gw?.close();
  await dynamo?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('airlock dev: the embedded orders table through the DynamoDB plugin', () => {
  it('the aws CLI scans the seeded table with nothing but the grant env', async () => {
    const res = await gw.requestGrant(await gw.tokenFor('demo-agent'), { resource: 'orders', access: 'read', ttl: '5m', task: 'look at orders' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const cli = await findAwsCli(1);
    const out = await aws(cli, ['dynamodb', 'scan', '--table-name', 'orders'], cliEnv(res.body.connect?.env ?? {}));
    assert.equal(out.code, 0, out.stderr);
    const scanned = JSON.parse(out.stdout) as { Count: number; Items: Array<{ id: { S: string } }> };
    assert.equal(scanned.Count, 3);
    assert.deepEqual(scanned.Items.map((i) => i.id.S).sort(), ['o-1001', 'o-1002', 'o-1003']);
  });

  it('a restart keeps the table without seeding twice', async () => {
    const again = await startEmbeddedDynamo({ dir: join(dir, 'dynamodb-2') });
    await again.stop();
    const reopened = await startEmbeddedDynamo({ dir: join(dir, 'dynamodb-2') });
    const res = await fetch(reopened.endpoint, {
      method: 'POST',
      headers: {
        'x-amz-target': 'DynamoDB_20120810.Scan',
        'content-type': 'application/x-amz-json-1.0',
        authorization: 'AWS4-HMAC-SHA256 Credential=AKIAX/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00',
        'x-amz-date': '20250101T000000Z',
      },
      body: JSON.stringify({ TableName: SEED_TABLE, Select: 'COUNT' }),
    });
    const body = (await res.json()) as { Count: number };
    await reopened.stop();
    assert.equal(body.Count, 3);
  });
});
