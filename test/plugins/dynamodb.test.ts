/** The plugin conformance suite against the DynamoDB plugin: AWS SDK v3 against a real moto. */
import { CreateTableCommand, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { runPluginConformance } from './conformance.ts';
import { awsWireError, REGION, sdkRefusal, startAwsBed } from './aws-json.ts';

runPluginConformance({
  type: 'dynamodb',
  skip: { 'revoke closes a live session': 'DynamoDB requests are stateless: each one is checked against the grant, so there is no live session to cut' },
  async start() {
    const bed = await startAwsBed(
      'dynamodb',
      { orders: { type: 'dynamodb', region: REGION, tables: ['orders', 'customers'], access: { read: ['GetItem', 'Query', 'Scan'] } } },
      async (moto) => {
        const admin = new DynamoDBClient({ endpoint: moto.endpoint, region: REGION, credentials: moto.adminKeys(), maxAttempts: 1 });
        await admin.send(new CreateTableCommand({ TableName: 'orders', KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }], BillingMode: 'PAY_PER_REQUEST' }));
        admin.destroy();
      },
    );
    const client = (id: string, secret: string, endpoint: string) => new DynamoDBClient({ endpoint, region: REGION, credentials: { accessKeyId: id, secretAccessKey: secret }, maxAttempts: 1 });
    const endpoint = `${bed.gw.url}/dynamodb`;
    return {
      gw: bed.gw,
      agentToken: bed.agentToken,
      watch: bed.watch,
      grantRequest: { resource: 'orders', access: 'read', ttl: '5m', task: 'conformance' },
      widenedScope: { tables: ['orders', 'secrets'] },
      async refusalFor(id, secret) {
        const c = client(id, secret, endpoint);
        try {
          await c.send(new GetItemCommand({ TableName: 'orders', Key: { id: { S: 'k' } } }));
          return 'accepted';
        } catch (e) {
          return sdkRefusal(e, id);
        } finally {
          c.destroy();
        }
      },
      async prepareRequest(g, marker) {
        const c = client(g.id, g.secret, String(g.connect['endpoint']));
        return { run: async () => void (await c.send(new GetItemCommand({ TableName: 'orders', Key: { id: { S: marker } } }))), done: async () => c.destroy() };
      },
      isRequestRecord: (r, g) => r.type === 'aws.request' && r.grant === g.id && r.data?.['operation'] === 'GetItem' && r.outcome === 'ok',
      wireError: awsWireError,
      internalWireError: '500 InternalServerError',
      close: () => bed.close(),
    };
  },
});
