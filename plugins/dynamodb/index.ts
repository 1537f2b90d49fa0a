/**
 * The DynamoDB plugin: an unmodified AWS SDK or aws CLI points at `<gateway>/dynamodb` with
 * the grant id and secret as its access key. airlock verifies the agent's SigV4 signature,
 * resolves every table the request touches (see resolve.ts, operations.ts, partiql.ts),
 * records it, signs again with its own identity and forwards to DynamoDB.
 *
 * Decisions documented here: ListTables is answered by airlock with the grant's tables;
 * DynamoDB Streams (DynamoDBStreams_20120810.*) are not served; operations airlock does not
 * model (backups, exports, imports, global tables) are refused.
 */
import { AirlockError, ErrorCodes } from '../../core/errors.ts';
import { awsConnectInfo, createJsonFront, narrowList } from '../../core/public.ts';
import { definePlugin, type PluginContext } from '../../core/plugin.ts';
import { authorizeDynamodb } from './authorize.ts';
import { dynamodbResourceSchema, type DynamodbResource } from './schema.ts';

export const DYNAMODB_MOUNT = '/dynamodb';

function resolveScope(resource: DynamodbResource, access: string, requested: Record<string, unknown> | undefined): Record<string, unknown> {
  const level = resource.access[access];
  if (level === undefined) throw new AirlockError(ErrorCodes.BAD_REQUEST, `unknown access level '${access}'`);
  const tables = narrowList(requested, 'tables', resource.tables, { what: 'table', valid: () => true, resourceType: 'dynamodb' });
  return { tables, operations: [...level] };
}

export default definePlugin<DynamodbResource>({
  type: 'dynamodb',
  credentials: ['sigv4'],
  resourceSchema: dynamodbResourceSchema,
  accessLevels: (resource) => Object.keys(resource.access),
  resolveScope,
  connectInfo: ({ resource, grant, secret, gateway }) =>
    awsConnectInfo({ endpoint: `${gateway.publicUrl}${DYNAMODB_MOUNT}`, region: resource.region, grant, secret, endpointEnv: 'AWS_ENDPOINT_URL_DYNAMODB' }),
  async start(ctx: PluginContext<DynamodbResource>) {
    const front = createJsonFront(ctx, {
      service: 'dynamodb',
      targetPrefix: 'DynamoDB_20120810',
      contentType: 'application/x-amz-json-1.0',
      errorTypePrefix: 'com.amazonaws.dynamodb.v20120810#',
      authorize: authorizeDynamodb,
      explainUnknownTarget: (target) =>
        target.startsWith('DynamoDBStreams_20120810.') ? 'DynamoDB Streams are not served through airlock' : undefined,
    });
    ctx.mount(DYNAMODB_MOUNT, front.app);
    return { close: () => front.close() };
  },
});
