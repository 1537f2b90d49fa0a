/**
 * The SSM plugin: Run Command through airlock. An unmodified SDK or aws CLI points at
 * `<gateway>/ssm` with the grant key; airlock verifies the signature, allows SendCommand
 * only for the grant's instances and its level's documents (tag targets only when the
 * resource allows them), limits the command-reading operations to the grant's own commands,
 * filters DescribeInstanceInformation to the grant's instances, records `ssm.command` with
 * the command text, signs again with its own identity and forwards.
 *
 * StartSession is refused with a clear error: relaying the Session Manager data channel
 * (and recording it) is later work.
 */
import { AirlockError, ErrorCodes } from '../../core/errors.ts';
import { awsConnectInfo, createJsonFront, narrowList } from '../../core/public.ts';
import { definePlugin, type PluginContext } from '../../core/plugin.ts';
import { createSsmAuthorizer, describeSsm } from './authorize.ts';
import { CommandLedger } from './command-ledger.ts';
import { ssmTools } from './tools.ts';
import { INSTANCE_ID_PATTERN, levelOperations, ssmResourceSchema, ssmScopeSchema, type SsmResource, type SsmScope } from './schema.ts';

export const SSM_MOUNT = '/ssm';

function resolveScope(resource: SsmResource, access: string, requested: Record<string, unknown> | undefined): SsmScope {
  const level = resource.access[access];
  if (level === undefined) throw new AirlockError(ErrorCodes.BAD_REQUEST, `unknown access level '${access}'`);
  const instances = narrowList(requested, 'instances', resource.instances, { what: 'instance', valid: (i) => INSTANCE_ID_PATTERN.test(i), resourceType: 'ssm' });
  return { instances, documents: [...level.documents], operations: levelOperations(resource, access) };
}

export default definePlugin<SsmResource, SsmScope>({
  type: 'ssm',
  credentials: ['sigv4'],
  resourceSchema: ssmResourceSchema,
  scopeSchema: ssmScopeSchema,
  accessLevels: (resource) => Object.keys(resource.access),
  resolveScope,
  awsBinding: (resource) => ({ region: resource.region, roleArn: resource.roleArn }),
  async start(ctx: PluginContext<SsmResource, SsmScope>) {
    const ledger = new CommandLedger(ctx.state);
    const sweeper = setInterval(() => ledger.sweep(), 60_000);
    sweeper.unref();
    const front = createJsonFront(ctx, {
      service: 'ssm',
      targetPrefix: 'AmazonSSM',
      contentType: 'application/x-amz-json-1.1',
      errorTypePrefix: '',
      authorize: createSsmAuthorizer(ledger),
      describe: describeSsm,
      recordViolations: true,
    });
    ctx.mount(SSM_MOUNT, front.app);
    const mcp = ssmTools(ctx, ledger);
    return {
      tools: mcp.tools,
      connectInfo: ({ grant, secret }) =>
        awsConnectInfo({ endpoint: `${ctx.gateway.publicUrl}${SSM_MOUNT}`, region: ctx.resources.get(grant.resource)?.region ?? ctx.aws.region, grant, secret, endpointEnv: 'AWS_ENDPOINT_URL_SSM' }),
      async close() {
        clearInterval(sweeper);
        await front.close();
        await mcp.close();
      },
    };
  },
});
