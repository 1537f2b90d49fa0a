/** Configuration of a `type: dynamodb` resource. */
import { z } from 'zod';
import { accountIdSchema, awsRegionSchema, roleArnSchema } from '../../core/public.ts';
import { SUPPORTED_OPERATIONS } from './operations.ts';
import { TABLE_NAME_PATTERN } from './resolve.ts';

export const dynamodbResourceSchema = z.strictObject({
  type: z.literal('dynamodb'),
  region: awsRegionSchema,
  /** Assumed per grant (RoleSessionName = grant id); else airlock's own credentials are used. */
  roleArn: roleArnSchema.optional(),
  /** The tables' account: needed to accept table ARNs (else taken from roleArn). */
  accountId: accountIdSchema.optional(),
  tables: z.array(z.string().regex(TABLE_NAME_PATTERN, 'a DynamoDB table name')).min(1),
  /** Access level name -> the operations it allows. */
  access: z
    .record(z.string().regex(/^[a-z][a-z0-9_-]*$/, 'access level names are lower-case'), z.array(z.enum(SUPPORTED_OPERATIONS)).min(1))
    .refine((levels) => Object.keys(levels).length > 0, 'at least one access level'),
  /** Record item values (keys, items, expression values) in the audit. Off by default. */
  recordItems: z.boolean().default(false),
});

export type DynamodbResource = z.infer<typeof dynamodbResourceSchema>;

/** The account a resource's tables live in, when the config says. */
export function resourceAccount(resource: DynamodbResource): string | undefined {
  return resource.accountId ?? /^arn:[^:]+:iam::(\d{12}):/.exec(resource.roleArn ?? '')?.[1];
}

/** A grant's effective scope: its tables and its access level's operations. */
export const dynamodbScopeSchema = z.object({
  tables: z.array(z.string()),
  operations: z.array(z.string()),
});
export type DynamodbScope = z.infer<typeof dynamodbScopeSchema>;
