/**
 * The embedded DynamoDB of `airlock dev`: dynalite (a DynamoDB-compatible server backed by
 * LevelDB in `dir`) on a random loopback port, with an `orders` table seeded with a few
 * items on first start. dynalite checks no signature, but airlock signs its requests anyway,
 * exactly as it would for DynamoDB.
 */
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

export interface EmbeddedDynamo {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  stop(): Promise<void>;
}

type DynaliteFactory = (options: { path?: string; createTableMs?: number; deleteTableMs?: number; updateTableMs?: number }) => Server;

export const SEED_TABLE = 'orders';

const SEED_ITEMS: ReadonlyArray<Record<string, unknown>> = [
  { id: { S: 'o-1001' }, customer: { S: 'acme' }, total: { N: '120.50' }, status: { S: 'shipped' } },
  { id: { S: 'o-1002' }, customer: { S: 'globex' }, total: { N: '42.00' }, status: { S: 'pending' } },
  { id: { S: 'o-1003' }, customer: { S: 'acme' }, total: { N: '9.99' }, status: { S: 'cancelled' } },
];

export async function startEmbeddedDynamo(opts: { dir: string; port?: number }): Promise<EmbeddedDynamo> {
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const dynalite = createRequire(import.meta.url)('dynalite') as DynaliteFactory;
  const server = dynalite({ path: opts.dir, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const endpoint = `http://127.0.0.1:${port}`;
  const stop = () => new Promise<void>((resolve) => server.close(() => resolve()));
  try {
    await seed(endpoint);
  } catch (e) {
    await stop();
    throw new Error(`embedded DynamoDB: cannot seed the ${SEED_TABLE} table: ${e instanceof Error ? e.message : String(e)}`);
  }
  return { endpoint, stop };
}

async function call(endpoint: string, operation: string, body: Record<string, unknown>): Promise<{ status: number; json: Record<string, unknown> }> {
  const url = new URL(endpoint);
  const text = JSON.stringify(body);
  const request = new HttpRequest({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: '/',
    headers: { host: url.host, 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `DynamoDB_20120810.${operation}` },
    body: text,
  });
  const signer = new SignatureV4({
    service: 'dynamodb',
    region: 'us-east-1',
    sha256: Hash.bind(null, 'sha256'),
    credentials: { accessKeyId: 'AKIAEMBEDDEDSEED0000', secretAccessKey: 'embedded-seed-not-a-secret' },
  });
  const signed = await signer.sign(request);
  const res = await fetch(`${endpoint}/`, { method: 'POST', headers: signed.headers, body: text });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function seed(endpoint: string): Promise<void> {
  const listed = await call(endpoint, 'ListTables', {});
  if ((listed.json['TableNames'] as string[] | undefined)?.includes(SEED_TABLE)) return;
  const created = await call(endpoint, 'CreateTable', {
    TableName: SEED_TABLE,
    KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
    AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
    BillingMode: 'PAY_PER_REQUEST',
  });
  if (created.status !== 200) throw new Error(`CreateTable answered ${created.status}: ${JSON.stringify(created.json)}`);
  // Even with createTableMs 0 the table is CREATING until dynalite's next tick.
  for (let attempt = 0; ; attempt++) {
    const described = await call(endpoint, 'DescribeTable', { TableName: SEED_TABLE });
    if ((described.json['Table'] as { TableStatus?: string } | undefined)?.TableStatus === 'ACTIVE') break;
    if (attempt >= 100) throw new Error('the table did not become ACTIVE');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  for (const item of SEED_ITEMS) {
    const put = await call(endpoint, 'PutItem', { TableName: SEED_TABLE, Item: item });
    if (put.status !== 200) throw new Error(`PutItem answered ${put.status}: ${JSON.stringify(put.json)}`);
  }
}
