/** Configuration of a `type: ssm` resource. */
import { z } from 'zod';
import { accountIdSchema, awsRegionSchema, roleArnSchema } from '../../core/public.ts';

export const INSTANCE_ID_PATTERN = /^(i|mi)-[0-9a-f]{8,17}$/;
export const DOCUMENT_NAME_PATTERN = /^[A-Za-z0-9_.-]{3,128}$/;

/** The SSM operations airlock serves (StartSession is refused with a clear error for now). */
export const SSM_OPERATIONS = [
  'SendCommand',
  'GetCommandInvocation',
  'ListCommands',
  'ListCommandInvocations',
  'CancelCommand',
  'DescribeInstanceInformation',
] as const;

export type SsmOperation = (typeof SSM_OPERATIONS)[number];

const level = z.strictObject({
  /** Documents SendCommand may run (names, e.g. AWS-RunShellScript). */
  documents: z.array(z.string().regex(DOCUMENT_NAME_PATTERN, 'an SSM document name')).default([]),
  /** Operations of this level (default: all that airlock serves). */
  operations: z.array(z.enum(SSM_OPERATIONS)).min(1).optional(),
});

export const ssmResourceSchema = z.strictObject({
  type: z.literal('ssm'),
  region: awsRegionSchema,
  /** Assumed per grant (RoleSessionName = grant id); else airlock's own credentials are used. */
  roleArn: roleArnSchema.optional(),
  /** The account of the instances and custom documents: needed to accept document ARNs. */
  accountId: accountIdSchema.optional(),
  instances: z.array(z.string().regex(INSTANCE_ID_PATTERN, 'an EC2 or managed instance id')).min(1),
  /**
   * Allow SendCommand `Targets` by tag or resource group. Off by default: such a target can
   * select instances airlock cannot see, so only the role's IAM policy would bound it.
   */
  allowTagTargets: z.boolean().default(false),
  access: z
    .record(z.string().regex(/^[a-z][a-z0-9_-]*$/, 'access level names are lower-case'), level)
    .refine((levels) => Object.keys(levels).length > 0, 'at least one access level'),
});

export type SsmResource = z.infer<typeof ssmResourceSchema>;

export function levelOperations(resource: SsmResource, access: string): SsmOperation[] {
  const l = resource.access[access];
  if (l === undefined) return [];
  return l.operations ?? [...SSM_OPERATIONS];
}

export function resourceAccount(resource: SsmResource): string | undefined {
  return resource.accountId ?? /^arn:[^:]+:iam::(\d{12}):/.exec(resource.roleArn ?? '')?.[1];
}

/** A grant's effective scope: instances, documents and operations of its access level, narrowed. */
export const ssmScopeSchema = z.object({
  instances: z.array(z.string()),
  documents: z.array(z.string()),
  operations: z.array(z.string()),
});
export type SsmScope = z.infer<typeof ssmScopeSchema>;
