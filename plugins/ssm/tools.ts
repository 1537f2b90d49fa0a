/**
 * MCP tools of the SSM plugin: `ssm_send_command` (SendCommand to the grant's instances with
 * one of its level's documents) and `ssm_get_command_output` (GetCommandInvocation of a
 * command this grant sent), through the same authorizer, command ledger and records
 * (`ssm.command`, `aws.request`, `aws.response`) as SDK requests.
 */
import { z } from 'zod';
import { awsCallToolResult, createJsonCall, type PluginContext, type ToolContribution } from '../../core/public.ts';
import { createSsmAuthorizer } from './authorize.ts';
import type { CommandLedger } from './command-ledger.ts';
import type { SsmResource, SsmScope } from './schema.ts';

export function ssmTools(ctx: PluginContext<SsmResource, SsmScope>, ledger: CommandLedger): { tools: ToolContribution<SsmScope>[]; close(): Promise<void> } {
  const caller = createJsonCall(ctx, { service: 'ssm', targetPrefix: 'AmazonSSM', contentType: 'application/x-amz-json-1.1', authorize: createSsmAuthorizer(ledger) });
  const send: ToolContribution<SsmScope> = {
    name: 'ssm_send_command',
    description: 'Run an SSM document (e.g. AWS-RunShellScript) on instances of your grant. Returns the command id; read its output with ssm_get_command_output.',
    inputSchema: z.object({
      instance_ids: z.array(z.string()).min(1).max(50).describe('instance ids inside the grant'),
      document: z.string().min(1).describe('document name allowed by the access level, e.g. AWS-RunShellScript'),
      parameters: z.record(z.string(), z.array(z.string())).optional().describe('document parameters, e.g. {"commands": ["uptime"]}'),
    }),
    async run(call, input) {
      const body = { InstanceIds: input.instance_ids, DocumentName: input.document, ...(input.parameters ? { Parameters: input.parameters } : {}) };
      const answer = await caller.call({ grant: call.grant, operation: 'SendCommand', body, signal: call.signal });
      const commandId = (answer.body.Command as { CommandId?: unknown } | undefined)?.CommandId;
      return awsCallToolResult(`SSM SendCommand ${String(input.document)}`, answer, call.limits, typeof commandId === 'string' ? { commandId } : {});
    },
  };
  const output: ToolContribution<SsmScope> = {
    name: 'ssm_get_command_output',
    description: 'Status and output of a command your grant sent (GetCommandInvocation) on one instance.',
    inputSchema: z.object({ command_id: z.string().min(1).max(64), instance_id: z.string().min(1).max(64) }),
    async run(call, input) {
      const answer = await caller.call({ grant: call.grant, operation: 'GetCommandInvocation', body: { CommandId: input.command_id, InstanceId: input.instance_id }, signal: call.signal });
      return awsCallToolResult(`SSM command ${String(input.command_id)} on ${String(input.instance_id)}`, answer, call.limits);
    },
  };
  return { tools: [send, output], close: () => caller.close() };
}
