/**
 * The IAM session policy for a grant's role session: SendCommand only on the grant's
 * instances and documents; the command-reading operations on `*` (SSM cannot scope them by
 * command id in IAM; airlock limits them to the grant's own commands).
 */
import { partitionOf } from '../../core/public.ts';

export function ssmSessionPolicy(input: {
  region: string;
  accountId: string | undefined;
  instances: readonly string[];
  documents: readonly string[];
  operations: readonly string[];
}): Record<string, unknown> {
  const partition = partitionOf(input.region);
  const account = input.accountId ?? '*';
  const statements: Array<Record<string, unknown>> = [];
  if (input.operations.includes('SendCommand') && input.documents.length > 0) {
    statements.push({
      Effect: 'Allow',
      Action: ['ssm:SendCommand'],
      Resource: [
        ...input.instances.map((i) =>
          i.startsWith('mi-') ? `arn:${partition}:ssm:${input.region}:${account}:managed-instance/${i}` : `arn:${partition}:ec2:${input.region}:${account}:instance/${i}`,
        ),
        // AWS-owned documents have an empty account field; `*` matches it.
        ...input.documents.map((d) => `arn:${partition}:ssm:${input.region}:*:document/${d}`),
      ],
    });
  }
  const others = input.operations.filter((op) => op !== 'SendCommand').map((op) => `ssm:${op}`);
  if (others.length > 0) statements.push({ Effect: 'Allow', Action: others, Resource: '*' });
  // A policy needs a statement; a level that can do nothing gets one that allows nothing.
  if (statements.length === 0) statements.push({ Effect: 'Deny', Action: '*', Resource: '*' });
  return { Version: '2012-10-17', Statement: statements };
}
