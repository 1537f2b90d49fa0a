/**
 * MCP tool of the DynamoDB plugin: `call_dynamodb {operation, input}` runs one DynamoDB
 * JSON operation on the grant, through the same `authorizeDynamodb` as SDK requests (scope,
 * access level, implied item operations) and the same `aws.request` / `aws.response` records.
 */
import { z } from 'zod';
import { awsCallToolResult, createJsonCall, type PluginContext, type ToolContribution } from '../../core/public.ts';
import { authorizeDynamodb } from './authorize.ts';
import type { DynamodbResource, DynamodbScope } from './schema.ts';

export function dynamodbTools(ctx: PluginContext<DynamodbResource, DynamodbScope>): { tools: ToolContribution<DynamodbScope>[]; close(): Promise<void> } {
  const caller = createJsonCall(ctx, { service: 'dynamodb', targetPrefix: 'DynamoDB_20120810', contentType: 'application/x-amz-json-1.0', authorize: authorizeDynamodb });
  const tool: ToolContribution<DynamodbScope> = {
    name: 'call_dynamodb',
    description:
      'Run one DynamoDB operation (GetItem, Query, Scan, PutItem, ...) on the tables of your grant. `input` is the operation\'s JSON request as in the DynamoDB API (attribute values typed, e.g. {"id": {"S": "1"}}).',
    inputSchema: z.object({
      operation: z.string().regex(/^[A-Za-z]{1,64}$/).describe('DynamoDB operation name, e.g. GetItem'),
      input: z.record(z.string(), z.unknown()).describe('the operation request JSON, e.g. {"TableName": "orders", "Key": {"id": {"S": "1"}}}'),
    }),
    async run(call, input) {
      const operation = String(input.operation);
      const answer = await caller.call({ grant: call.grant, operation, body: input.input as Record<string, unknown>, signal: call.signal });
      return awsCallToolResult(answer.status >= 400 ? `DynamoDB ${operation}` : `DynamoDB ${operation} on ${call.grant.resource}`, answer, call.limits, { operation });
    },
  };
  return { tools: [tool], close: () => caller.close() };
}
