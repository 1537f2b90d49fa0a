/**
 * The DynamoDB plugin end to end with the AWS SDK v3 as the agent's client: airlock in front
 * of moto with signature and IAM enforcement, so moto proves airlock signs upstream with its
 * own identity (or a per-grant role) and stays within what that identity is allowed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  BatchExecuteStatementCommand,
  BatchGetItemCommand,
  BatchWriteItemCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  ExecuteStatementCommand,
  ExecuteTransactionCommand,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  TransactGetItemsCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { verifyAuditFiles } from '../../core/audit/verify.ts';
import { eventually } from '../harness/gateway.ts';
import { agentClient, grantFor, REGION, startDynamoEnv, type DynamoEnv, type IssuedGrant } from './setup.ts';

let env: DynamoEnv;
let reader: IssuedGrant;
let writer: IssuedGrant;

before(async () => {
  env = await startDynamoEnv();
  reader = await grantFor(env, { resource: 'orders', access: 'read' });
  writer = await grantFor(env, { resource: 'orders', access: 'write' });
});
after(async () => {
  await env?.close();
});

function errorName(e: unknown): string {
  return (e as { name?: string }).name ?? String(e);
}

async function refused(promise: Promise<unknown>, name: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.equal(errorName(e), name, String((e as Error).message));
    if (message) assert.match((e as Error).message, message);
    return true;
  });
}

const key = (id: string) => ({ id: { S: id } });

/** Sign a raw DynamoDB request with the grant key, as an SDK would, for the tamper tests. */
async function rawSigned(
  grant: IssuedGrant,
  o: { target: string; body: string; service?: string; region?: string; signingDate?: Date },
): Promise<{ url: string; headers: Record<string, string>; body: string }> {
  const url = new URL(grant.endpoint);
  const request = new HttpRequest({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    headers: { host: url.host, 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `DynamoDB_20120810.${o.target}` },
    body: o.body,
  });
  const signer = new SignatureV4({
    service: o.service ?? 'dynamodb',
    region: o.region ?? REGION,
    sha256: Hash.bind(null, 'sha256'),
    credentials: { accessKeyId: grant.id, secretAccessKey: grant.secret },
  });
  const signed = await signer.sign(request, o.signingDate ? { signingDate: o.signingDate } : {});
  return { url: grant.endpoint, headers: signed.headers, body: o.body };
}

async function send(r: { url: string; headers: Record<string, string>; body: string }): Promise<{ status: number; json: Record<string, string> }> {
  const headers = { ...r.headers };
  delete headers['host'];
  const res = await fetch(r.url, { method: 'POST', headers, body: r.body });
  return { status: res.status, json: (await res.json()) as Record<string, string> };
}

describe('dynamodb through airlock (AWS SDK v3, moto with IAM enforcement)', () => {
  it('the connect block points the SDK at a base path on the gateway', () => {
    assert.match(reader.endpoint, /^http:\/\/127\.0\.0\.1:\d+\/dynamodb$/);
    assert.equal(reader.env['AWS_ACCESS_KEY_ID'], reader.id);
    assert.equal(reader.env['AWS_ENDPOINT_URL_DYNAMODB'], reader.endpoint);
    assert.equal(reader.env['AWS_DEFAULT_REGION'], REGION);
  });

  it('allows reads in scope: GetItem, Query on an index, Scan, DescribeTable, BatchGetItem, TransactGetItems, SELECT', async () => {
    const c = agentClient(reader);
    const got = await c.send(new GetItemCommand({ TableName: 'orders', Key: key('1'), ReturnConsumedCapacity: 'TOTAL' }));
    assert.equal(got.Item?.['note']?.S, 'orders-1');
    assert.equal(got.ConsumedCapacity?.TableName, 'orders');
    const queried = await c.send(
      new QueryCommand({
        TableName: 'orders',
        IndexName: 'by-customer',
        KeyConditionExpression: 'customer = :c',
        ExpressionAttributeValues: { ':c': { S: 'acme' } },
      }),
    );
    assert.equal(queried.Count, 2);
    assert.equal((await c.send(new ScanCommand({ TableName: 'customers' }))).Count, 2);
    assert.equal((await c.send(new DescribeTableCommand({ TableName: 'orders' }))).Table?.TableName, 'orders');
    const batch = await c.send(new BatchGetItemCommand({ RequestItems: { orders: { Keys: [key('1')] }, customers: { Keys: [key('2')] } } }));
    assert.equal(batch.Responses?.['customers']?.[0]?.['note']?.S, 'customers-2');
    const tx = await c.send(new TransactGetItemsCommand({ TransactItems: [{ Get: { TableName: 'orders', Key: key('2') } }] }));
    assert.equal(tx.Responses?.[0]?.Item?.['note']?.S, 'orders-2');
    const sel = await c.send(new ExecuteStatementCommand({ Statement: `SELECT * FROM "orders" WHERE id = '1'` }));
    assert.equal(sel.Items?.[0]?.['note']?.S, 'orders-1');
    c.destroy();
  });

  it('ListTables shows only the grant tables', async () => {
    const c = agentClient(reader);
    const listed = await c.send(new ListTablesCommand({}));
    assert.deepEqual(listed.TableNames, ['customers', 'orders']);
    c.destroy();
  });

  it('allows writes in scope: PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems, PartiQL', async () => {
    const c = agentClient(writer);
    await c.send(new PutItemCommand({ TableName: 'orders', Item: { id: { S: 'w1' }, customer: { S: 'x' } } }));
    await c.send(new UpdateItemCommand({ TableName: 'orders', Key: key('w1'), UpdateExpression: 'SET note = :n', ExpressionAttributeValues: { ':n': { S: 'updated' } } }));
    assert.equal((await c.send(new GetItemCommand({ TableName: 'orders', Key: key('w1') }))).Item?.['note']?.S, 'updated');
    await c.send(new BatchWriteItemCommand({ RequestItems: { customers: [{ PutRequest: { Item: { id: { S: 'w2' }, customer: { S: 'y' } } } }] } }));
    await c.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          { Put: { TableName: 'orders', Item: { id: { S: 'w3' }, customer: { S: 'z' } } } },
          { Delete: { TableName: 'customers', Key: key('w2') } },
        ],
      }),
    );
    await c.send(new ExecuteStatementCommand({ Statement: `INSERT INTO "orders" VALUE {'id': 'w4', 'customer': 'q'}` }));
    await c.send(new DeleteItemCommand({ TableName: 'orders', Key: key('w1') }));
    const check = await env.admin.send(new GetItemCommand({ TableName: 'orders', Key: key('w4') }));
    assert.equal(check.Item?.['customer']?.S, 'q');
    assert.equal((await env.admin.send(new GetItemCommand({ TableName: 'orders', Key: key('w1') }))).Item, undefined);
    c.destroy();
  });

  it('refuses every form that reaches a table outside the grant', async () => {
    const c = agentClient(reader);
    const w = agentClient(writer);
    const denied = (p: Promise<unknown>) => refused(p, 'AccessDeniedException', /secrets/);
    await denied(c.send(new GetItemCommand({ TableName: 'secrets', Key: key('1') })));
    await denied(c.send(new GetItemCommand({ TableName: `arn:aws:dynamodb:${REGION}:${env.moto.accountId}:table/secrets`, Key: key('1') })));
    await denied(c.send(new QueryCommand({
      TableName: `arn:aws:dynamodb:${REGION}:${env.moto.accountId}:table/secrets/index/by-customer`,
      KeyConditionExpression: 'customer = :c',
      ExpressionAttributeValues: { ':c': { S: 'acme' } },
    })));
    await denied(c.send(new BatchGetItemCommand({ RequestItems: { orders: { Keys: [key('1')] }, secrets: { Keys: [key('1')] } } })));
    await denied(c.send(new TransactGetItemsCommand({
      TransactItems: [{ Get: { TableName: 'orders', Key: key('1') } }, { Get: { TableName: 'secrets', Key: key('1') } }],
    })));
    await denied(c.send(new ExecuteStatementCommand({ Statement: `SELECT * FROM "secrets" WHERE id = '1'` })));
    await denied(c.send(new ExecuteStatementCommand({ Statement: `SELECT * FROM "secrets"."by-customer" WHERE customer = 'acme'` })));
    await denied(w.send(new BatchWriteItemCommand({ RequestItems: { orders: [{ PutRequest: { Item: key('x') } }], secrets: [{ DeleteRequest: { Key: key('1') } }] } })));
    await denied(w.send(new TransactWriteItemsCommand({
      TransactItems: [{ Put: { TableName: 'orders', Item: key('x') } }, { Delete: { TableName: 'secrets', Key: key('1') } }],
    })));
    await denied(w.send(new BatchExecuteStatementCommand({
      Statements: [{ Statement: `UPDATE orders SET note = 'b' WHERE id = '1'` }, { Statement: `DELETE FROM "secrets" WHERE id = '1'` }],
    })));
    await denied(w.send(new ExecuteTransactionCommand({
      TransactStatements: [{ Statement: `UPDATE "orders" SET note = 'x' WHERE id = '1'` }, { Statement: `DELETE FROM secrets WHERE id = '2'` }],
    })));
    // Nothing reached moto: the secrets table is intact.
    const kept = await env.admin.send(new ScanCommand({ TableName: 'secrets' }));
    assert.equal(kept.Count, 2);
    c.destroy();
    w.destroy();
  });

  it('refuses PartiQL it cannot fully resolve, and a read level running a PartiQL write', async () => {
    const c = agentClient(reader);
    await refused(c.send(new ExecuteStatementCommand({ Statement: `SELECT * FROM orders WHERE id IN (SELECT id FROM secrets)` })), 'AccessDeniedException');
    await refused(c.send(new ExecuteStatementCommand({ Statement: `SELECT * FROM orders -- secrets` })), 'AccessDeniedException', /comments/);
    await refused(c.send(new ExecuteStatementCommand({ Statement: `DELETE FROM "orders" WHERE id = '1'` })), 'AccessDeniedException', /DeleteItem/);
    await refused(c.send(new PutItemCommand({ TableName: 'orders', Item: key('r') })), 'AccessDeniedException', /PutItem is not allowed/);
    c.destroy();
  });

  it('relays what AWS itself refuses: airlock has no more rights than its own identity', async () => {
    // DescribeTimeToLive is in the read level, but airlock's moto user is not allowed it.
    const c = agentClient(reader);
    await refused(c.send(new DescribeTimeToLiveCommand({ TableName: 'orders' })), 'AccessDeniedException', /not authorized|dynamodb:DescribeTimeToLive/i);
    c.destroy();
  });

  it('refuses a wrong secret, another region, another service, a tampered body, a stale X-Amz-Date', async () => {
    await refused(agentClient(reader, { secretAccessKey: 'x'.repeat(40) }).send(new GetItemCommand({ TableName: 'orders', Key: key('1') })), 'InvalidSignatureException');
    await refused(agentClient(reader, { region: 'eu-west-1' }).send(new GetItemCommand({ TableName: 'orders', Key: key('1') })), 'InvalidSignatureException', /region/);

    const body = JSON.stringify({ TableName: 'orders', Key: key('1') });
    const otherService = await send(await rawSigned(reader, { target: 'GetItem', body, service: 'ssm' }));
    assert.equal(otherService.status, 400);
    assert.match(otherService.json['__type'] ?? '', /InvalidSignatureException$/);

    const tampered = await rawSigned(reader, { target: 'GetItem', body });
    const tamperedRes = await send({ ...tampered, body: JSON.stringify({ TableName: 'customers', Key: key('1') }) });
    assert.equal(tamperedRes.status, 400);
    assert.match(tamperedRes.json['__type'] ?? '', /InvalidSignatureException$/);

    const stale = await send(await rawSigned(reader, { target: 'GetItem', body, signingDate: new Date(Date.now() - 6 * 60_000) }));
    assert.equal(stale.status, 400);
    assert.match(stale.json['__type'] ?? '', /InvalidSignatureException$/);
    assert.match(stale.json['message'] ?? '', /Signature expired/);

    const unsigned = await fetch(reader.endpoint, { method: 'POST', headers: { 'x-amz-target': 'DynamoDB_20120810.GetItem' }, body });
    assert.equal(unsigned.status, 400);
    assert.match(((await unsigned.json()) as { __type: string }).__type, /MissingAuthenticationTokenException$/);
  });

  it('refuses a revoked grant and an expired one', async () => {
    const doomed = await grantFor(env, { resource: 'orders', access: 'read' });
    const c = agentClient(doomed);
    await c.send(new GetItemCommand({ TableName: 'orders', Key: key('1') }));
    const revoked = await env.gw.revoke(doomed.id, await env.gw.adminToken());
    assert.equal(revoked.status < 300, true, JSON.stringify(revoked.body));
    await refused(c.send(new GetItemCommand({ TableName: 'orders', Key: key('1') })), 'UnrecognizedClientException', /revoked/);

    const brief = await grantFor(env, { resource: 'orders', access: 'read', ttl: '1s' });
    const b = agentClient(brief);
    await eventually(() => (env.gw.gateway.grants.view(brief.id)?.status === 'expired' ? true : undefined), 5_000, 'grant expiry');
    await refused(b.send(new GetItemCommand({ TableName: 'orders', Key: key('1') })), 'ExpiredTokenException');
    c.destroy();
    b.destroy();
  });

  it('assumes the resource role once per grant (session named after the grant) and reuses it', async () => {
    const g = await grantFor(env, { resource: 'orders-role', access: 'read' });
    const c = agentClient(g);
    for (let i = 0; i < 3; i++) {
      assert.equal((await c.send(new GetItemCommand({ TableName: 'orders', Key: key('1') }))).Item?.['note']?.S, 'orders-1');
    }
    await c.send(new ScanCommand({ TableName: 'orders' }));
    const data = (await (await fetch(`${env.moto.endpoint}/moto-api/data.json`)).json()) as {
      sts?: { AssumedRole?: Array<{ session_name: string; role_arn: string; policy?: string }> };
    };
    const sessions = (data.sts?.AssumedRole ?? []).filter((r) => r.session_name === g.id);
    assert.equal(sessions.length, 1, 'one AssumeRole for four requests of the grant');
    assert.equal(sessions[0]?.role_arn, env.roleArn);
    const policy = JSON.parse(sessions[0]?.policy ?? '{}') as { Statement: Array<{ Resource: string[] }> };
    assert.ok(policy.Statement[0]?.Resource.some((r) => r.endsWith(':table/orders')), 'session policy narrowed to the grant tables');

    // A write grant on the same resource: the role (read-only in IAM) is what moto enforces.
    const w = await grantFor(env, { resource: 'orders-role', access: 'write' });
    const wc = agentClient(w);
    await refused(wc.send(new PutItemCommand({ TableName: 'orders', Item: key('role-w') })), 'AccessDeniedException');
    c.destroy();
    wc.destroy();
  });

  it('records every attempt, allowed or refused, in an audit chain that verifies', async () => {
    const records = env.gw.auditRecords();
    const requests = records.filter((r) => r.type === 'aws.request');
    const ok = requests.filter((r) => r.outcome === 'ok');
    const denied = requests.filter((r) => r.outcome === 'denied');
    assert.ok(ok.some((r) => r.data?.['operation'] === 'GetItem' && r.grant === reader.id));
    assert.ok(denied.some((r) => JSON.stringify(r.data?.['reason']).includes('secrets')));
    assert.ok(denied.length >= 13, `denied records: ${denied.length}`);
    const responses = records.filter((r) => r.type === 'aws.response');
    assert.ok(responses.some((r) => r.data?.['status'] === 200));
    const withCapacity = responses.find((r) => r.data?.['consumedCapacity'] !== undefined);
    assert.equal((withCapacity?.data?.['consumedCapacity'] as { TableName?: string } | undefined)?.TableName, 'orders');
    assert.equal(typeof withCapacity?.data?.['ms'], 'number');
    assert.ok(responses.some((r) => r.data?.['errorType'] === 'AccessDeniedException'), 'moto refusal recorded');
    const failedAuth = records.filter((r) => r.type === 'auth.failed');
    assert.ok(failedAuth.length >= 6, `auth.failed records: ${failedAuth.length}`);
    assert.ok(failedAuth.every((r) => !JSON.stringify(r).includes(reader.secret)), 'no secret in the audit');
    assert.ok(!JSON.stringify(records).includes(reader.secret));
    // Item values stay out of the audit (recordItems is off).
    assert.ok(!JSON.stringify(requests).includes('orders-1'));
    const result = await verifyAuditFiles(env.gw.auditFiles(), { publicKeys: [env.gw.gateway.identity.key.publicJwk] });
    assert.equal(result.ok, true, JSON.stringify(result.failure));
    assert.equal(result.records, records.length);
  });
});
