/**
 * The SSM decision for one verified request. Request members are checked against a list per
 * operation: a member airlock does not know (an S3 output bucket, an SNS notification, a
 * service role) is refused rather than passed on, because each is a way for a command's
 * effects or output to leave the grant's scope.
 */
import { AirlockError, ErrorCodes } from '../../core/errors.ts';
import { AwsWireError } from '../../core/public.ts';
import type { AuthorizeInput, JsonDecision } from '../../core/public.ts';
import type { Grant } from '../../core/plugin.ts';
import type { CommandLedger } from './command-ledger.ts';
import { DOCUMENT_NAME_PATTERN, INSTANCE_ID_PATTERN, levelOperations, resourceAccount, SSM_OPERATIONS, type SsmResource, type SsmScope } from './schema.ts';
import { ssmSessionPolicy } from './session-policy.ts';

const ALLOWED_MEMBERS: Readonly<Record<string, readonly string[]>> = {
  SendCommand: [
    'InstanceIds',
    'Targets',
    'DocumentName',
    'DocumentVersion',
    'DocumentHash',
    'DocumentHashType',
    'TimeoutSeconds',
    'Comment',
    'Parameters',
    'MaxConcurrency',
    'MaxErrors',
  ],
  GetCommandInvocation: ['CommandId', 'InstanceId', 'PluginName'],
  ListCommands: ['CommandId', 'InstanceId', 'MaxResults', 'NextToken', 'Filters'],
  ListCommandInvocations: ['CommandId', 'InstanceId', 'MaxResults', 'NextToken', 'Filters', 'Details'],
  CancelCommand: ['CommandId', 'InstanceIds'],
  DescribeInstanceInformation: ['InstanceInformationFilterList', 'Filters', 'MaxResults', 'NextToken'],
};

const SESSION_OPERATIONS = new Set(['StartSession', 'ResumeSession', 'TerminateSession']);
const COMMAND_ID_PATTERN = /^[0-9a-f-]{36}$/;
/** Parameters are recorded in full (they are the command text), up to this size. */
const MAX_RECORDED_PARAMETERS_CHARS = 64 * 1024;

/**
 * The target keys SSM defines, spelled exactly: anything else (`instanceids`, `"InstanceIds "`)
 * is refused, so no spelling AWS might read as instance ids skips the instance check.
 */
const TARGET_KEYS = new Set(['InstanceIds', 'tag-key', 'resource-groups:Name', 'resource-groups:ResourceTypeFilters']);
const TAG_TARGET_KEY = /^tag:[\p{L}\p{N}\s_.:/=+\-@]{1,128}$/u;

function isTargetKey(key: string): boolean {
  return TARGET_KEYS.has(key) || (TAG_TARGET_KEY.test(key) && key.trim() === key);
}

function denied(message: string): AirlockError {
  return new AirlockError(ErrorCodes.OUT_OF_SCOPE, message);
}

function unresolvable(message: string): AirlockError {
  return new AirlockError(ErrorCodes.UNRESOLVABLE, message);
}

/** The grant's scope intersected with the current config: what was removed since is gone. */
export function effectiveScope(resource: SsmResource, grant: Grant<SsmScope>): SsmScope {
  const level = resource.access[grant.access];
  if (level === undefined) throw denied(`access level '${grant.access}' no longer exists on this resource`);
  const s = grant.scope;
  return {
    instances: resource.instances.filter((x) => s.instances.includes(x)),
    documents: level.documents.filter((x) => s.documents.includes(x)),
    operations: levelOperations(resource, grant.access).filter((x) => s.operations.includes(x)),
  };
}

function checkMembers(operation: string, body: Record<string, unknown>): void {
  const allowed = ALLOWED_MEMBERS[operation] ?? [];
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw unresolvable(`${operation}: member '${key}' is not accepted through airlock`);
  }
}

function stringList(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw unresolvable(`${what} must be a list of strings`);
  if (value.length > 50) throw unresolvable(`${what} has more than 50 entries`);
  return value as string[];
}

function requireInstances(ids: readonly string[], scope: SsmScope, what: string): void {
  for (const id of ids) {
    if (!INSTANCE_ID_PATTERN.test(id)) throw unresolvable(`${what}: '${id}' is not an instance id`);
    if (!scope.instances.includes(id)) throw denied(`instance ${id} is outside this grant (instances: ${scope.instances.join(', ')})`);
  }
}

/** A document name, or an ARN of an AWS-owned or this account's document in this region. */
function documentName(value: unknown, resource: SsmResource): string {
  if (typeof value !== 'string') throw unresolvable('DocumentName is required');
  if (DOCUMENT_NAME_PATTERN.test(value)) return value;
  const arn = /^arn:[a-z-]+:ssm:([a-z0-9-]+):(\d{12})?:document\/([A-Za-z0-9_.-]{3,128})$/.exec(value);
  if (arn === null) throw unresolvable(`DocumentName '${value}' is neither a document name nor a document ARN`);
  const [, region, account, name] = arn as unknown as [string, string, string | undefined, string];
  if (region !== resource.region) throw unresolvable(`DocumentName names a document in region ${region}`);
  if (account !== undefined && account !== resourceAccount(resource)) {
    throw unresolvable(`DocumentName names a document of account ${account}, not this resource's`);
  }
  return name;
}

function commandIdOf(body: Record<string, unknown>, required: boolean): string | undefined {
  const id = body['CommandId'];
  if (id === undefined && !required) return undefined;
  if (typeof id !== 'string' || !COMMAND_ID_PATTERN.test(id)) throw unresolvable('CommandId must be a command id');
  return id;
}

/** The decision, once the shared ledger confirms the command is the grant's own. */
async function ownedThen(ledger: CommandLedger, grant: Grant<SsmScope>, commandId: string, decision: JsonDecision): Promise<JsonDecision> {
  if (!(await ledger.owns(grant.id, commandId))) throw denied(`command ${commandId} was not sent with this grant`);
  return decision;
}

/** The commands a listing may show: the one asked for (once confirmed the grant's own), or all of the grant's. */
async function listedCommands(ledger: CommandLedger, grant: Grant<SsmScope>, commandId: string | undefined): Promise<ReadonlySet<string>> {
  if (commandId === undefined) return ledger.commandsOf(grant.id);
  if (!(await ledger.owns(grant.id, commandId))) throw denied(`command ${commandId} was not sent with this grant`);
  return new Set([commandId]);
}

function parseJson(body: Buffer): Record<string, unknown> {
  const parsed = JSON.parse(body.toString('utf8')) as unknown;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
  return parsed as Record<string, unknown>;
}

/** Keep only the entries of a listing that belong to the grant. */
function filtered(listKey: string, keep: (entry: Record<string, unknown>) => boolean) {
  return (body: Buffer) => {
    let parsed: Record<string, unknown>;
    try {
      parsed = parseJson(body);
    } catch {
      throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, 'upstream answered a listing airlock cannot read');
    }
    const list = Array.isArray(parsed[listKey]) ? (parsed[listKey] as Array<Record<string, unknown>>) : [];
    const kept = list.filter((e) => typeof e === 'object' && e !== null && keep(e));
    parsed[listKey] = kept;
    return { body: Buffer.from(JSON.stringify(parsed)), data: { listed: kept.length, hidden: list.length - kept.length } };
  };
}

function recordedParameters(parameters: unknown): unknown {
  if (parameters === undefined) return undefined;
  const text = JSON.stringify(parameters);
  return text.length <= MAX_RECORDED_PARAMETERS_CHARS ? parameters : { truncated: true, json: text.slice(0, MAX_RECORDED_PARAMETERS_CHARS) };
}

/** A string or list of strings as sent, for a record; anything else as its JSON, bounded. */
function asSent(value: unknown): unknown {
  if (value === undefined || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  const text = JSON.stringify(value) ?? '';
  return text.length <= MAX_RECORDED_PARAMETERS_CHARS ? value : { truncated: true, json: text.slice(0, MAX_RECORDED_PARAMETERS_CHARS) };
}

/**
 * What a request asks, for the record of a refused one (JsonFrontSpec.describe): the
 * document, instances, targets with their tag values, commands and parameters as sent,
 * and every member airlock does not accept with its value (`OutputS3BucketName`…).
 */
export function describeSsm(input: AuthorizeInput<SsmResource, SsmScope>): { type?: string; data: Record<string, unknown> } {
  const { operation, body } = input;
  const allowed = ALLOWED_MEMBERS[operation] ?? [];
  const forbidden: Record<string, unknown> = {};
  for (const key of Object.keys(body)) if (!allowed.includes(key)) forbidden[key] = asSent(body[key]);
  const parameters = body['Parameters'];
  const commands = (parameters as { commands?: unknown } | undefined)?.commands;
  const data: Record<string, unknown> = {
    ...(body['DocumentName'] !== undefined ? { document: asSent(body['DocumentName']) } : {}),
    ...(body['DocumentVersion'] !== undefined ? { documentVersion: asSent(body['DocumentVersion']) } : {}),
    ...(body['InstanceIds'] !== undefined ? { instances: asSent(body['InstanceIds']) } : {}),
    ...(body['InstanceId'] !== undefined ? { instances: [asSent(body['InstanceId'])] } : {}),
    ...(body['Targets'] !== undefined ? { targets: asSent(body['Targets']) } : {}),
    ...(commands !== undefined ? { commands: asSent(commands) } : {}),
    ...(parameters !== undefined ? { parameters: recordedParameters(parameters) } : {}),
    ...(body['Comment'] !== undefined ? { comment: asSent(body['Comment']) } : {}),
    ...(body['CommandId'] !== undefined ? { commandId: asSent(body['CommandId']) } : {}),
    ...(Object.keys(forbidden).length > 0 ? { forbiddenMembers: forbidden } : {}),
  };
  return { type: operation === 'SendCommand' ? 'ssm.command' : 'aws.request', data };
}

export function createSsmAuthorizer(ledger: CommandLedger) {
  return function authorizeSsm(input: AuthorizeInput<SsmResource, SsmScope>): JsonDecision | Promise<JsonDecision> {
    const { operation, body, grant, resource } = input;
    if (SESSION_OPERATIONS.has(operation)) {
      throw new AwsWireError(
        ErrorCodes.UNRESOLVABLE,
        `${operation} is not available through airlock yet (the Session Manager data-channel relay is later work); use SendCommand`,
        'AccessDeniedException',
      );
    }
    if (!(SSM_OPERATIONS as readonly string[]).includes(operation)) throw unresolvable(`operation ${operation} is not served by airlock`);
    const scope = effectiveScope(resource, grant);
    if (!scope.operations.includes(operation)) throw denied(`${operation} is not allowed by access level '${grant.access}' of ${grant.resource}`);
    checkMembers(operation, body);

    const sessionPolicy = ssmSessionPolicy({
      region: resource.region,
      accountId: resourceAccount(resource),
      instances: scope.instances,
      documents: scope.documents,
      operations: scope.operations,
    });
    const base = { service: 'ssm', operation };
    const grantEnds = grant.expiresAt === null ? Date.now() : Date.parse(grant.expiresAt);

    switch (operation) {
      case 'SendCommand': {
        const document = documentName(body['DocumentName'], resource);
        if (!scope.documents.includes(document)) {
          throw denied(`document ${document} is not allowed by access level '${grant.access}' (documents: ${scope.documents.join(', ') || 'none'})`);
        }
        const instances = body['InstanceIds'] === undefined ? [] : stringList(body['InstanceIds'], 'InstanceIds');
        requireInstances(instances, scope, 'InstanceIds');
        const targets: Array<{ Key: string; Values: string[] }> = [];
        if (body['Targets'] !== undefined) {
          if (!Array.isArray(body['Targets'])) throw unresolvable('Targets must be a list');
          for (const [i, t] of (body['Targets'] as unknown[]).entries()) {
            const target = t as { Key?: unknown; Values?: unknown };
            if (typeof target !== 'object' || target === null || typeof target.Key !== 'string') throw unresolvable(`Targets[${i}] needs a Key`);
            const values = stringList(target.Values, `Targets[${i}].Values`);
            if (!isTargetKey(target.Key)) throw unresolvable(`Targets[${i}].Key '${target.Key}' is not a target key SSM defines (InstanceIds, tag:<key>, tag-key, resource-groups:Name, resource-groups:ResourceTypeFilters)`);
            if (target.Key === 'InstanceIds') requireInstances(values, scope, `Targets[${i}]`);
            else if (!resource.allowTagTargets) {
              throw denied(`Targets[${i}] selects instances by '${target.Key}', which this resource does not allow (allowTagTargets is off)`);
            }
            targets.push({ Key: target.Key, Values: values });
          }
        }
        if (instances.length === 0 && targets.length === 0) throw unresolvable('SendCommand needs InstanceIds or Targets');
        const parameters = body['Parameters'];
        const commands = (parameters as { commands?: unknown } | undefined)?.commands;
        return {
          record: {
            type: 'ssm.command',
            data: {
              ...base,
              document,
              ...(typeof body['DocumentVersion'] === 'string' ? { documentVersion: body['DocumentVersion'] } : {}),
              instances,
              ...(targets.length > 0 ? { targets } : {}),
              ...(Array.isArray(commands) ? { commands } : {}),
              ...(parameters !== undefined ? { parameters: recordedParameters(parameters) } : {}),
              ...(typeof body['Comment'] === 'string' ? { comment: body['Comment'] } : {}),
            },
          },
          sessionPolicy,
          // The id is in the shared ledger before the client learns it, so its next call
          // (GetCommandInvocation) may reach any replica.
          onSuccess: async (responseBody) => {
            let commandId: unknown;
            try {
              commandId = (parseJson(responseBody)['Command'] as { CommandId?: unknown } | undefined)?.CommandId;
            } catch {
              commandId = undefined;
            }
            if (typeof commandId !== 'string') return { data: { commandId: null } };
            await ledger.remember(grant.id, commandId, grantEnds);
            return { data: { commandId } };
          },
        };
      }
      case 'GetCommandInvocation': {
        const commandId = commandIdOf(body, true) as string;
        const instance = body['InstanceId'];
        if (typeof instance !== 'string') throw unresolvable('InstanceId is required');
        requireInstances([instance], scope, 'InstanceId');
        return ownedThen(ledger, grant, commandId, { record: { type: 'aws.request', data: { ...base, commandId, instances: [instance] } }, sessionPolicy });
      }
      case 'CancelCommand': {
        const commandId = commandIdOf(body, true) as string;
        const instances = body['InstanceIds'] === undefined ? [] : stringList(body['InstanceIds'], 'InstanceIds');
        requireInstances(instances, scope, 'InstanceIds');
        return ownedThen(ledger, grant, commandId, { record: { type: 'aws.request', data: { ...base, commandId, instances } }, sessionPolicy });
      }
      case 'ListCommands':
      case 'ListCommandInvocations': {
        const commandId = commandIdOf(body, false);
        const instance = body['InstanceId'];
        if (instance !== undefined) {
          if (typeof instance !== 'string') throw unresolvable('InstanceId must be a string');
          requireInstances([instance], scope, 'InstanceId');
        }
        const listKey = operation === 'ListCommands' ? 'Commands' : 'CommandInvocations';
        const record = { type: 'aws.request', data: { ...base, ...(commandId ? { commandId } : {}), ...(typeof instance === 'string' ? { instances: [instance] } : {}) } };
        // Without a CommandId the listing spans every command in the account: show only ours.
        return listedCommands(ledger, grant, commandId).then((own) => ({
          record,
          sessionPolicy,
          onSuccess: filtered(listKey, (e) => typeof e['CommandId'] === 'string' && own.has(e['CommandId'])),
        }));
      }
      case 'DescribeInstanceInformation':
        return {
          record: { type: 'aws.request', data: { ...base, instances: scope.instances } },
          sessionPolicy,
          onSuccess: filtered('InstanceInformationList', (e) => typeof e['InstanceId'] === 'string' && scope.instances.includes(e['InstanceId'])),
        };
      default:
        throw unresolvable(`operation ${operation} is not served by airlock`);
    }
  };
}
