/**
 * End-to-end set-up for the DynamoDB plugin: a real moto (signature + IAM enforcement on),
 * three tables, airlock's own moto user allowed exactly the operations the config lists
 * (plus sts:AssumeRole), a role for the role-assuming resource allowed only reads, and a
 * real in-process gateway in front of it all.
 */
import { DynamoDBClient, CreateTableCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { startMoto, type Moto, type MotoKeys } from '../harness/moto.ts';
import { startTestGateway, type TestGateway } from '../harness/gateway.ts';

export const AGENT = 'local:orders-bot';
export const REGION = 'us-east-1';

export const READ_OPS = ['GetItem', 'BatchGetItem', 'Query', 'Scan', 'DescribeTable', 'TransactGetItems', 'ExecuteStatement', 'ListTables', 'DescribeTimeToLive'];
export const WRITE_OPS = ['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems', 'ExecuteStatement', 'BatchExecuteStatement', 'ExecuteTransaction', 'GetItem'];

/** What airlock's moto user may do: the config's operations, except DescribeTimeToLive (to show moto refusing). */
const AIRLOCK_USER_ACTIONS = [...new Set([...READ_OPS, ...WRITE_OPS])]
  .filter((op) => op !== 'DescribeTimeToLive' && op !== 'ListTables')
  .map((op) => `dynamodb:${op}`);

export interface DynamoEnv {
  moto: Moto;
  gw: TestGateway;
  airlockUser: MotoKeys;
  roleArn: string;
  admin: DynamoDBClient;
  close(): Promise<void>;
}

export function adminClient(moto: Moto): DynamoDBClient {
  return new DynamoDBClient({ endpoint: moto.endpoint, region: REGION, credentials: moto.adminKeys(), maxAttempts: 1 });
}

export async function startDynamoEnv(): Promise<DynamoEnv> {
  const moto = await startMoto();
  let gw: TestGateway | undefined;
  const admin = adminClient(moto);
  try {
    for (const table of ['orders', 'customers', 'secrets']) {
      await admin.send(
        new CreateTableCommand({
          TableName: table,
          KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
          AttributeDefinitions: [
            { AttributeName: 'id', AttributeType: 'S' },
            { AttributeName: 'customer', AttributeType: 'S' },
          ],
          GlobalSecondaryIndexes: [
            { IndexName: 'by-customer', KeySchema: [{ AttributeName: 'customer', KeyType: 'HASH' }], Projection: { ProjectionType: 'ALL' } },
          ],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
      for (const id of ['1', '2']) {
        await admin.send(new PutItemCommand({ TableName: table, Item: { id: { S: id }, customer: { S: 'acme' }, note: { S: `${table}-${id}` } } }));
      }
    }
    const airlockUser = await moto.createUser('airlock-gateway', {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: AIRLOCK_USER_ACTIONS, Resource: '*' },
        { Effect: 'Allow', Action: ['sts:AssumeRole'], Resource: '*' },
      ],
    });
    const roleArn = await moto.createRole(
      'airlock-orders-reader',
      { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: airlockUser.arn }, Action: ['sts:AssumeRole', 'sts:SetSourceIdentity'] }] },
      { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:Scan'], Resource: '*' }] },
    );
    await moto.enableAuth();

    gw = await startTestGateway({
      config: {
        aws: { region: REGION, endpoints: { dynamodb: moto.endpoint, sts: moto.endpoint } },
        resources: {
          orders: {
            type: 'dynamodb',
            region: REGION,
            accountId: moto.accountId,
            tables: ['orders', 'customers'],
            access: { read: READ_OPS, write: WRITE_OPS },
          },
          'orders-role': {
            type: 'dynamodb',
            region: REGION,
            roleArn,
            tables: ['orders'],
            // Scan is in the level but also in the role: PutItem is not in the role, so a
            // level that allowed it would still be refused by AWS (shown in the tests).
            access: { read: ['GetItem', 'Query', 'Scan'], write: ['PutItem'] },
          },
        },
        policies: [{ agents: [AGENT], resources: ['orders', 'orders-role'], access: ['read', 'write'], maxTtl: '15m' }],
        audit: { durability: 'strict' },
      },
      env: {
        AWS_ACCESS_KEY_ID: airlockUser.accessKeyId,
        AWS_SECRET_ACCESS_KEY: airlockUser.secretAccessKey,
        AWS_REGION: REGION,
      },
    });
    const started = gw;
    return {
      moto,
      gw: started,
      airlockUser,
      roleArn,
      admin,
      async close() {
        admin.destroy();
        await started.close();
        await moto.stop();
      },
    };
  } catch (e) {
    admin.destroy();
    await gw?.close();
    await moto.stop();
    throw e;
  }
}

export interface IssuedGrant {
  id: string;
  secret: string;
  endpoint: string;
  env: Record<string, string>;
}

export async function grantFor(env: DynamoEnv, body: Record<string, unknown>): Promise<IssuedGrant> {
  const token = await env.gw.tokenFor(AGENT.slice('local:'.length));
  const res = await env.gw.requestGrant(token, { ttl: '10m', task: 'dynamodb e2e test', ...body });
  if (res.status !== 201 || !res.body.id || !res.body.secret || !res.body.connect) {
    throw new Error(`grant request failed: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return { id: res.body.id, secret: res.body.secret, endpoint: String(res.body.connect['endpoint']), env: res.body.connect.env };
}

export function agentClient(grant: IssuedGrant, over: { secretAccessKey?: string; region?: string } = {}): DynamoDBClient {
  return new DynamoDBClient({
    endpoint: grant.endpoint,
    region: over.region ?? REGION,
    credentials: { accessKeyId: grant.id, secretAccessKey: over.secretAccessKey ?? grant.secret },
    maxAttempts: 1,
  });
}
