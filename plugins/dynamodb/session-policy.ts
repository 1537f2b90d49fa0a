/**
 * The IAM session policy for a grant's role session: the role can do no more than the
 * grant, even if airlock's own checks had a hole. Resources are the grant's tables and their
 * indexes in the resource's region (and account, when known).
 */
import { partitionOf } from '../../core/public.ts';
import { PARTIQL_IAM_ACTIONS } from './operations.ts';

export function dynamodbSessionPolicy(input: {
  region: string;
  accountId: string | undefined;
  tables: readonly string[];
  operations: readonly string[];
}): Record<string, unknown> {
  const actions = new Set<string>();
  for (const op of input.operations) {
    if (op === 'ListTables') continue; // answered by airlock
    actions.add(`dynamodb:${op}`);
    if (op === 'ExecuteStatement' || op === 'BatchExecuteStatement' || op === 'ExecuteTransaction') {
      for (const action of Object.values(PARTIQL_IAM_ACTIONS)) actions.add(`dynamodb:${action}`);
    }
    if (op === 'TransactWriteItems') actions.add('dynamodb:ConditionCheckItem');
  }
  const partition = partitionOf(input.region);
  const account = input.accountId ?? '*';
  const resources = input.tables.flatMap((t) => [
    `arn:${partition}:dynamodb:${input.region}:${account}:table/${t}`,
    `arn:${partition}:dynamodb:${input.region}:${account}:table/${t}/index/*`,
  ]);
  const statements: Array<Record<string, unknown>> = [{ Effect: 'Allow', Action: [...actions].sort(), Resource: resources }];
  if (input.operations.includes('DescribeLimits')) statements.push({ Effect: 'Allow', Action: ['dynamodb:DescribeLimits'], Resource: '*' });
  return { Version: '2012-10-17', Statement: statements };
}
