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
import { createJsonFront } from '../../core/public.ts';
import { definePlugin, type PluginContext } from '../../core/plugin.ts';
import { authorizeDynamodb } from './authorize.ts';
import { dynamodbResourceSchema, type DynamodbResource } from './schema.ts';

export const DYNAMODB_MOUNT = '/dynamodb';

function resolveScope(resource: DynamodbResource, access: string, requested: Record<string, unknown> | undefined): Record<string, unknown> {
  const level = resource.access[access];
  if (level === undefined) throw new AirlockError(ErrorCodes.BAD_REQUEST, `unknown access level '${access}'`);
  let tables = resource.tables;
  for (const key of Object.keys(requested ?? {})) {
    if (key !== 'tables') throw new AirlockError(ErrorCodes.BAD_REQUEST, `unknown scope key '${key}' (dynamodb scopes take: tables)`);
  }
  const asked = requested?.['tables'];
  if (asked !== undefined) {
    const list = typeof asked === 'string' ? asked.split(/[,\s]+/).filter(Boolean) : asked;
    if (!Array.isArray(list) || list.length === 0 || !list.every((t) => typeof t === 'string')) {
      throw new AirlockError(ErrorCodes.BAD_REQUEST, 'scope.tables must be a non-empty list of table names');
    }
    const outside = list.filter((t) => !resource.tables.includes(t));
    if (outside.length > 0) throw new AirlockError(ErrorCodes.OUT_OF_SCOPE, `table ${outside.join(', ')} is not part of this resource`);
    tables = [...new Set(list as string[])];
  }
  return { tables, operations: [...level] };
}

export default definePlugin<DynamodbResource>({
  type: 'dynamodb',
  resourceSchema: dynamodbResourceSchema,
  accessLevels: (resource) => Object.keys(resource.access),
  resolveScope,
  connectInfo({ resource, grant, secret, gateway }) {
    const endpoint = `${gateway.publicUrl}${DYNAMODB_MOUNT}`;
    return {
      endpoint,
      region: resource.region,
      env: {
        AWS_ACCESS_KEY_ID: grant.id,
        AWS_SECRET_ACCESS_KEY: secret,
        AWS_REGION: resource.region,
        AWS_DEFAULT_REGION: resource.region,
        AWS_ENDPOINT_URL_DYNAMODB: endpoint,
      },
    };
  },
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
