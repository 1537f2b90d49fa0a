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
import { join } from 'node:path';
import { AirlockError, ErrorCodes } from '../../core/errors.ts';
import { createJsonFront } from '../../core/public.ts';
import { definePlugin, type PluginContext } from '../../core/plugin.ts';
import { createSsmAuthorizer } from './authorize.ts';
import { CommandLedger } from './command-ledger.ts';
import { INSTANCE_ID_PATTERN, levelOperations, ssmResourceSchema, type SsmResource } from './schema.ts';

export const SSM_MOUNT = '/ssm';

function resolveScope(resource: SsmResource, access: string, requested: Record<string, unknown> | undefined): Record<string, unknown> {
  const level = resource.access[access];
  if (level === undefined) throw new AirlockError(ErrorCodes.BAD_REQUEST, `unknown access level '${access}'`);
  for (const key of Object.keys(requested ?? {})) {
    if (key !== 'instances') throw new AirlockError(ErrorCodes.BAD_REQUEST, `unknown scope key '${key}' (ssm scopes take: instances)`);
  }
  let instances = resource.instances;
  const asked = requested?.['instances'];
  if (asked !== undefined) {
    const list = typeof asked === 'string' ? asked.split(/[,\s]+/).filter(Boolean) : asked;
    if (!Array.isArray(list) || list.length === 0 || !list.every((i) => typeof i === 'string' && INSTANCE_ID_PATTERN.test(i))) {
      throw new AirlockError(ErrorCodes.BAD_REQUEST, 'scope.instances must be a non-empty list of instance ids');
    }
    const outside = list.filter((i) => !resource.instances.includes(i));
    if (outside.length > 0) throw new AirlockError(ErrorCodes.OUT_OF_SCOPE, `instance ${outside.join(', ')} is not part of this resource`);
    instances = [...new Set(list as string[])];
  }
  return { instances, documents: [...level.documents], operations: levelOperations(resource, access) };
}

export default definePlugin<SsmResource>({
  type: 'ssm',
  resourceSchema: ssmResourceSchema,
  accessLevels: (resource) => Object.keys(resource.access),
  resolveScope,
  connectInfo({ resource, grant, secret, gateway }) {
    const endpoint = `${gateway.publicUrl}${SSM_MOUNT}`;
    return {
      endpoint,
      region: resource.region,
      env: {
        AWS_ACCESS_KEY_ID: grant.id,
        AWS_SECRET_ACCESS_KEY: secret,
        AWS_REGION: resource.region,
        AWS_DEFAULT_REGION: resource.region,
        AWS_ENDPOINT_URL_SSM: endpoint,
      },
    };
  },
  async start(ctx: PluginContext<SsmResource>) {
    const ledger = new CommandLedger(join(ctx.gateway.dataDir, 'ssm-commands.jsonl'));
    const sweeper = setInterval(() => ledger.sweep(), 60_000);
    sweeper.unref();
    const front = createJsonFront(ctx, {
      service: 'ssm',
      targetPrefix: 'AmazonSSM',
      contentType: 'application/x-amz-json-1.1',
      errorTypePrefix: '',
      authorize: createSsmAuthorizer(ledger),
    });
    ctx.mount(SSM_MOUNT, front.app);
    return {
      async close() {
        clearInterval(sweeper);
        await front.close();
      },
    };
  },
});
