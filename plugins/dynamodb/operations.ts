/**
 * The DynamoDB operations airlock serves, and for each one how to find every table it
 * touches. An operation not listed here is refused: airlock cannot vouch for a request it
 * does not fully understand (backups, exports to S3, global tables, imports, …).
 *
 * Compound operations also count as the item operations they perform, as IAM evaluates
 * them: BatchGetItem and TransactGetItems read with GetItem; BatchWriteItem and
 * TransactWriteItems write with PutItem / UpdateItem / DeleteItem per entry (a transaction's
 * ConditionCheck writes nothing and needs only TransactWriteItems); a PartiQL statement
 * counts as SELECT → Query (with WHERE) or Scan (without), INSERT → PutItem,
 * UPDATE → UpdateItem, DELETE → DeleteItem. All of them must be in the access level.
 */

/** Operations addressed by a top-level `TableName`. */
export const TABLE_NAME_OPERATIONS = [
  'GetItem',
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'Query',
  'Scan',
  'DescribeTable',
  'DescribeTimeToLive',
  'DescribeContinuousBackups',
  'DescribeContributorInsights',
  'DescribeKinesisStreamingDestination',
  'DescribeTableReplicaAutoScaling',
  'UpdateTimeToLive',
  'UpdateTable',
  'CreateTable',
  'DeleteTable',
] as const;

/** Operations addressed by a table `ResourceArn`. */
export const RESOURCE_ARN_OPERATIONS = ['ListTagsOfResource', 'TagResource', 'UntagResource'] as const;

export const MULTI_TABLE_OPERATIONS = ['BatchGetItem', 'BatchWriteItem', 'TransactGetItems', 'TransactWriteItems'] as const;

export const PARTIQL_OPERATIONS = ['ExecuteStatement', 'BatchExecuteStatement', 'ExecuteTransaction'] as const;

/**
 * Operations about no table. ListTables is answered by airlock itself with the grant's
 * tables (sorted, paged as DynamoDB pages), so it reveals no other table's name; every
 * access level may call it, listed or not.
 */
export const GLOBAL_OPERATIONS = ['ListTables', 'DescribeLimits'] as const;

export const SUPPORTED_OPERATIONS = [
  ...TABLE_NAME_OPERATIONS,
  ...RESOURCE_ARN_OPERATIONS,
  ...MULTI_TABLE_OPERATIONS,
  ...PARTIQL_OPERATIONS,
  ...GLOBAL_OPERATIONS,
] as const;

export type DynamoOperation = (typeof SUPPORTED_OPERATIONS)[number];

const SUPPORTED = new Set<string>(SUPPORTED_OPERATIONS);

export function isSupportedOperation(name: string): name is DynamoOperation {
  return SUPPORTED.has(name);
}

/** IAM actions a PartiQL-capable level also needs on the role (for the session policy). */
export const PARTIQL_IAM_ACTIONS: Readonly<Record<string, string>> = {
  select: 'PartiQLSelect',
  insert: 'PartiQLInsert',
  update: 'PartiQLUpdate',
  delete: 'PartiQLDelete',
};
