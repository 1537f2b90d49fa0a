/**
 * One AWS JSON-protocol call made on a grant's behalf without an inbound signature (the
 * MCP tools `call_dynamodb`, `ssm_send_command`): the same stages as the JSON front after
 * its signature check, with the plugin's own `authorize`, so the scope checks and the
 * `aws.request` / `aws.response` records are the ones an SDK client gets.
 *
 *   authorize (refusal → aws.request denied) → exchange.ready (request spooled) → sign with
 *   airlock's credentials → forward → exchange.finish (aws.response) → the parsed answer.
 */
import { AirlockError, ErrorCodes, isAirlockError } from '../errors.ts';
import type { Grant, PluginContext } from '../plugin.ts';
import type { JsonDecision, JsonFrontSpec } from './json-front.ts';
import { toAwsJsonError } from './errors.ts';
import { AwsUpstream } from './upstream.ts';
import { inspectAnswer } from './json-front/upstream-answer.ts';

export interface JsonCallResult {
  status: number;
  /** The answer's JSON (an AWS error body when status ≥ 400). */
  body: Record<string, unknown>;
  /** AWS error type when status ≥ 400. */
  errorType?: string | undefined;
}

export interface JsonCaller {
  call(input: { grant: Grant<unknown>; operation: string; body: Record<string, unknown>; signal: AbortSignal }): Promise<JsonCallResult>;
  close(): Promise<void>;
}

type Spec<RC, Scope> = Pick<JsonFrontSpec<RC, Scope>, 'service' | 'targetPrefix' | 'contentType' | 'authorize'>;

export function createJsonCall<RC, Scope, LC>(ctx: PluginContext<RC, Scope, LC>, spec: Spec<RC, Scope>): JsonCaller {
  const upstream = new AwsUpstream();

  /** The plugin decides; a refusal is recorded as the JSON front records it, then thrown. */
  async function decide(grant: Grant<Scope>, operation: string, body: Record<string, unknown>): Promise<JsonDecision> {
    try {
      if (!/^[A-Za-z]{1,64}$/.test(operation)) throw new AirlockError(ErrorCodes.UNRESOLVABLE, `'${operation.slice(0, 64)}' is not a ${spec.targetPrefix} operation`);
      const resource = ctx.resources.get(grant.resource);
      if (resource === undefined) throw new AirlockError(ErrorCodes.WRONG_RESOURCE, `grant ${grant.id} is for resource ${grant.resource}, which this gateway does not serve`);
      return await spec.authorize({ operation, body, grant, resourceName: grant.resource, resource });
    } catch (e) {
      const code = isAirlockError(e) ? e.code : ErrorCodes.INTERNAL;
      const receipt = ctx.audit.record({
        type: 'aws.request',
        grant,
        data: { service: spec.service, operation: operation.slice(0, 64), via: 'mcp', code, reason: isAirlockError(e) ? e.message : 'internal error' },
        outcome: code === ErrorCodes.INTERNAL ? 'error' : 'denied',
      });
      await receipt.durable.catch(() => {}); // the refusal stands whether or not it could be recorded
      throw e;
    }
  }

  async function call(input: { grant: Grant<unknown>; operation: string; body: Record<string, unknown>; signal: AbortSignal }): Promise<JsonCallResult> {
    const grant = ctx.grants.requireActive(input.grant.id);
    const { operation, body } = input;
    const decision = await decide(grant, operation, body);
    // The same audited exchange as the JSON front: the request spooled before AWS sees it,
    // the outcome (`aws.response`, with requestSeq) spooled and the request durable before
    // the tool answers.
    const exchange = ctx.audit.exchange(grant, { type: decision.record.type, data: { ...decision.record.data, via: 'mcp' }, resultType: 'aws.response' });
    await exchange.ready();
    if (decision.local !== undefined) {
      await exchange.durable();
      return { status: 200, body: decision.local.body };
    }
    if (input.signal.aborted) throw input.signal.reason;
    const region = (ctx.resources.get(grant.resource) as { region?: string } | undefined)?.region ?? ctx.aws.region;
    const started = performance.now();
    let status: number;
    let answer: Buffer;
    try {
      const credentials = await ctx.aws.credentials({ resource: grant.resource, grant, sessionPolicy: decision.sessionPolicy });
      const target = `${spec.targetPrefix}.${operation}`;
      const unsigned = AwsUpstream.jsonRequest(ctx.aws.endpoint(spec.service, region), { 'content-type': spec.contentType, 'x-amz-target': target }, JSON.stringify(decision.forwardBody ?? body));
      const res = await upstream.send(await ctx.aws.sign(unsigned, { service: spec.service, region, credentials }));
      status = res.status;
      answer = res.body;
    } catch (e) {
      await exchange.finish('error', { service: spec.service, operation, error: toAwsJsonError(e).message, ms: ms(started) });
      throw e;
    }
    const inspected = await inspectAnswer({ status, body: answer }, decision.onSuccess);
    const parsed = parseAnswer(inspected.body, status);
    await exchange.finish(status < 400 && inspected.withheld === undefined ? 'ok' : 'error', {
      service: spec.service, operation, status, ms: ms(started), ...(parsed.errorType ? { errorType: parsed.errorType } : {}), ...inspected.extra,
    });
    if (inspected.withheld !== undefined) throw inspected.withheld;
    return parsed;
  }

  return { call, close: () => upstream.close() };
}

/** JSON, or (moto) an XML error turned into the same shape. */
function parseAnswer(body: Buffer, status: number): JsonCallResult {
  const text = body.toString('utf8');
  try {
    const parsed = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
    const type = typeof parsed.__type === 'string' ? parsed.__type.slice(parsed.__type.lastIndexOf('#') + 1) : undefined;
    return { status, body: parsed, errorType: status >= 400 ? (type ?? `HTTP${status}`) : undefined };
  } catch {
    const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? `HTTP${status}`;
    const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? text.slice(0, 300);
    return { status, body: { __type: code, message }, errorType: code };
  }
}

function ms(started: number): number {
  return Math.round((performance.now() - started) * 1000) / 1000;
}
