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
import { authorizeDynamodb, describeDynamodb } from './authorize.ts';
import { dynamodbTools } from './tools.ts';
import { dynamodbResourceSchema, dynamodbScopeSchema, type DynamodbResource, type DynamodbScope } from './schema.ts';

/** The region of a configured resource (the grant's resource is always configured: it was checked at issue). */
function regionOf(ctx: PluginContext<DynamodbResource, DynamodbScope>, resource: string): string {
  return ctx.resources.get(resource)?.region ?? ctx.aws.region;
}

export const DYNAMODB_MOUNT = '/dynamodb';

function resolveScope(resource: DynamodbResource, access: string, requested: Record<string, unknown> | undefined): DynamodbScope {
  const level = resource.access[access];
  if (level === undefined) throw new AirlockError(ErrorCodes.BAD_REQUEST, `unknown access level '${access}'`);
  const tables = narrowList(requested, 'tables', resource.tables, { what: 'table', valid: () => true, resourceType: 'dynamodb' });
  return { tables, operations: [...level] };
}

export default definePlugin<DynamodbResource, DynamodbScope>({
  type: 'dynamodb',
  credentials: ['sigv4'],
  resourceSchema: dynamodbResourceSchema,
  scopeSchema: dynamodbScopeSchema,
  accessLevels: (resource) => Object.keys(resource.access),
  resolveScope,
  awsBinding: (resource) => ({ region: resource.region, roleArn: resource.roleArn }),
  async start(ctx: PluginContext<DynamodbResource, DynamodbScope>) {
    const front = createJsonFront(ctx, {
      service: 'dynamodb',
      targetPrefix: 'DynamoDB_20120810',
      contentType: 'application/x-amz-json-1.0',
      errorTypePrefix: 'com.amazonaws.dynamodb.v20120810#',
      authorize: authorizeDynamodb,
      describe: describeDynamodb,
      explainUnknownTarget: (target) =>
        target.startsWith('DynamoDBStreams_20120810.') ? 'DynamoDB Streams are not served through airlock' : undefined,
    });
    ctx.mount(DYNAMODB_MOUNT, front.app);
    const mcp = dynamodbTools(ctx);
    return {
      tools: mcp.tools,
      close: async () => {
        await front.close();
        await mcp.close();
      },
      connectInfo: ({ grant, secret }) =>
        awsConnectInfo({ endpoint: `${ctx.gateway.publicUrl}${DYNAMODB_MOUNT}`, region: regionOf(ctx, grant.resource), grant, secret, endpointEnv: 'AWS_ENDPOINT_URL_DYNAMODB' }),
    };
  },
});
