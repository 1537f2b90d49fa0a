/**
 * The DynamoDB decision for one verified request: operation in the access level, every
 * table in scope, every implied item operation in the level. Builds the audit record and,
 * for ListTables, the local answer.
 */
import { AirlockError, ErrorCodes } from '../../core/errors.ts';
import type { AuthorizeInput, JsonDecision } from '../../core/public.ts';
import { resolveRequest } from './resolve.ts';
import { resourceAccount, type DynamodbResource, type DynamodbScope } from './schema.ts';
import { dynamodbSessionPolicy } from './session-policy.ts';

/** Recorded request bodies (recordItems) are cut here so one request cannot flood the audit. */
const MAX_RECORDED_BODY_CHARS = 64 * 1024;

/** The grant's effective scope, intersected with the current config (a removed table is gone). */
export function effectiveScope(resource: DynamodbResource, access: string, scope: DynamodbScope) {
  const level = resource.access[access];
  if (level === undefined) throw new AirlockError(ErrorCodes.OUT_OF_SCOPE, `access level '${access}' no longer exists on this resource`);
  return {
    tables: resource.tables.filter((t) => scope.tables.includes(t)),
    operations: level.filter((op) => scope.operations.includes(op)),
  };
}

function listTables(tables: readonly string[], body: Record<string, unknown>): Record<string, unknown> {
  const sorted = [...tables].sort();
  const start = body['ExclusiveStartTableName'];
  const limitValue = body['Limit'];
  const limit = typeof limitValue === 'number' && limitValue >= 1 && limitValue <= 100 ? Math.floor(limitValue) : 100;
  const after = typeof start === 'string' ? sorted.filter((t) => t > start) : sorted;
  const page = after.slice(0, limit);
  return after.length > limit ? { TableNames: page, LastEvaluatedTableName: page[page.length - 1] } : { TableNames: page };
}

function recordedExpressions(body: Record<string, unknown>): Record<string, unknown> | undefined {
  // Expressions hold attribute names and :placeholders, never values.
  const names = ['KeyConditionExpression', 'FilterExpression', 'ProjectionExpression', 'UpdateExpression', 'ConditionExpression'];
  const out: Record<string, unknown> = {};
  for (const name of names) if (typeof body[name] === 'string') out[name] = body[name];
  return Object.keys(out).length > 0 ? out : undefined;
}

function recordedBody(body: Record<string, unknown>): unknown {
  const text = JSON.stringify(body);
  return text.length <= MAX_RECORDED_BODY_CHARS ? body : { truncated: true, json: text.slice(0, MAX_RECORDED_BODY_CHARS) };
}

/** What a request asks, as its record says it: the same for an allowed and a refused one. */
function requestData(operation: string, body: Record<string, unknown>, resource: DynamodbResource, resolution: ReturnType<typeof resolveRequest>): Record<string, unknown> {
  const indexName = body['IndexName'];
  const data: Record<string, unknown> = {
    service: 'dynamodb',
    operation,
    tables: resolution.tables,
    ...(resolution.indexes.length > 0 ? { indexes: resolution.indexes } : {}),
    ...(resolution.itemOperations.length > 0 ? { itemOperations: resolution.itemOperations } : {}),
    ...(resolution.statements !== undefined ? { statements: resolution.statements } : {}),
    ...(typeof indexName === 'string' ? { index: indexName } : {}),
  };
  const expressions = recordedExpressions(body);
  if (expressions !== undefined) data['expressions'] = expressions;
  if (resource.recordItems) data['request'] = recordedBody(body);
  return data;
}

/** The description of a refused request (JsonFrontSpec.describe); throws when the request cannot be read at all. */
export function describeDynamodb(input: AuthorizeInput<DynamodbResource, DynamodbScope>): { data: Record<string, unknown> } {
  const { operation, body, resource } = input;
  return { data: requestData(operation, body, resource, resolveRequest(operation, body, { region: resource.region, accountId: resourceAccount(resource) })) };
}

export function authorizeDynamodb(input: AuthorizeInput<DynamodbResource, DynamodbScope>): JsonDecision {
  const { operation, body, grant, resource } = input;
  const scope = effectiveScope(resource, grant.access, grant.scope);
  // ListTables is answered here from the grant's own tables, so any level may ask it.
  if (operation !== 'ListTables' && !scope.operations.includes(operation as never)) {
    throw new AirlockError(ErrorCodes.OUT_OF_SCOPE, `${operation} is not allowed by access level '${grant.access}' of ${grant.resource}`);
  }
  const resolution = resolveRequest(operation, body, { region: resource.region, accountId: resourceAccount(resource) });
  for (const op of resolution.itemOperations) {
    if (!scope.operations.includes(op as never)) {
      throw new AirlockError(
        ErrorCodes.OUT_OF_SCOPE,
        `${operation} performs ${op}, which access level '${grant.access}' of ${grant.resource} does not allow`,
      );
    }
  }
  const outside = resolution.tables.filter((t) => !scope.tables.includes(t));
  if (outside.length > 0) {
    throw new AirlockError(ErrorCodes.OUT_OF_SCOPE, `table ${outside.join(', ')} is outside this grant (tables: ${scope.tables.join(', ')})`);
  }

  const data = requestData(operation, body, resource, resolution);

  if (operation === 'ListTables') {
    return { record: { type: 'aws.request', data }, local: { body: listTables(scope.tables, body) } };
  }

  const wantsCapacity = body['ReturnConsumedCapacity'] === 'TOTAL' || body['ReturnConsumedCapacity'] === 'INDEXES';
  return {
    record: { type: 'aws.request', data },
    // Only an assumed role takes a session policy; building it for every request of a
    // role-less resource cost ~1.5% of the CPU of a GetItem (bench profile).
    sessionPolicy:
      resource.roleArn === undefined
        ? undefined
        : dynamodbSessionPolicy({
            region: resource.region,
            accountId: resourceAccount(resource),
            tables: scope.tables,
            operations: scope.operations,
          }),
    onSuccess: (responseBody) => {
      // Parse the answer only when it carries something we record: large Scans stay cheap.
      if (!wantsCapacity && !resource.recordItems) return {};
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(responseBody.toString('utf8')) as Record<string, unknown>;
      } catch {
        return {};
      }
      const extra: Record<string, unknown> = {};
      if (parsed['ConsumedCapacity'] !== undefined) extra['consumedCapacity'] = parsed['ConsumedCapacity'];
      if (typeof parsed['Count'] === 'number') extra['count'] = parsed['Count'];
      if (typeof parsed['ScannedCount'] === 'number') extra['scannedCount'] = parsed['ScannedCount'];
      return { data: extra };
    },
  };
}
