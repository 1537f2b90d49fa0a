/**
 * The front of an AWS JSON-protocol service (DynamoDB, SSM): one POST endpoint where an
 * unmodified SDK or aws CLI sends `X-Amz-Target: <Prefix>.<Operation>` requests signed with
 * a grant-issued key. Every request goes through these stages, in order:
 *
 *   authenticate (SigV4)  → decide (parse; the plugin's `authorize`)
 *   → exchange.ready()    (the request record is spooled: docs/design.md, durability)
 *   → forward (sign with airlock's credentials, send) → exchange.finish() → relay
 *
 * Every refusal is recorded (`auth.failed` before a grant is proven, else the request
 * record with outcome `denied`) and answered with the AWS JSON error shape the SDKs parse.
 * The plugin supplies only `authorize`; the wire handling lives here once.
 */
import { Hono, type Context } from 'hono';
import type { Logger } from 'pino';
import { AirlockError, ErrorCodes, isAirlockError } from '../errors.ts';
import type { AnyScope, AuditExchange, Grant, InboundAwsRequest, PluginContext } from '../plugin.ts';
import { AwsWireError, awsJsonErrorBody, toAwsJsonError } from './errors.ts';
import { DEFAULT_MAX_BODY_BYTES } from './sigv4-inbound.ts';
import { AwsUpstream, type UpstreamResponse } from './upstream.ts';
import { AuthGuard } from './json-front/auth-guard.ts';
import { parseJsonObject, readBody } from './json-front/body.ts';
import { requestHead, type RequestHead } from './json-front/request-head.ts';
import { errorTypeOf, inspectAnswer, normalizeUpstreamError, relayedHeaders, type SuccessInspector } from './json-front/upstream-answer.ts';

export interface AuthorizeInput<RC, Scope = AnyScope> {
  operation: string;
  /** The request's JSON body, already parsed (an object). */
  body: Record<string, unknown>;
  grant: Grant<Scope>;
  resourceName: string;
  resource: RC;
}

export interface JsonDecision {
  /** The request record, written (and spooled) before the request is forwarded or answered locally. */
  record: { type: string; data: Record<string, unknown> };
  /** Answer here without contacting AWS (e.g. a filtered listing). */
  local?: { body: Record<string, unknown> } | undefined;
  /** Body to forward when it differs from the client's. */
  forwardBody?: Record<string, unknown> | undefined;
  /** Session policy for a per-grant role (narrowed to the grant's scope). */
  sessionPolicy?: Record<string, unknown> | undefined;
  /**
   * Inspect a 2xx upstream body: may replace it (filtering) and add data to the result
   * record (consumed capacity, command id). Throws to fail the request closed.
   */
  onSuccess?: SuccessInspector | undefined;
}

export interface JsonFrontSpec<RC, Scope = AnyScope> {
  /** SigV4 signing name, e.g. `dynamodb`. */
  service: string;
  /** `X-Amz-Target` prefix without the dot, e.g. `DynamoDB_20120810`. */
  targetPrefix: string;
  /** Content type of requests and responses, e.g. `application/x-amz-json-1.0`. */
  contentType: string;
  /** Prefix of `__type` in errors, e.g. `com.amazonaws.dynamodb.v20120810#` (may be ''). */
  errorTypePrefix: string;
  /**
   * Decide one request: return what to record and forward, or throw (reject) with an
   * AirlockError. A promise only when the decision needs shared state (SSM's command ledger).
   */
  authorize(input: AuthorizeInput<RC, Scope>): JsonDecision | Promise<JsonDecision>;
  /** Largest request body (default 1 MiB). */
  maxBodyBytes?: number | undefined;
  /**
   * What a request asks, for the record of a REFUSED one: the same description an allowed
   * one gets (tables, statements, document, instances, forbidden members…), built without
   * judging it. Must not throw (a throw leaves only service and operation in the record).
   */
  describe?: ((input: AuthorizeInput<RC, Scope>) => { type?: string | undefined; data: Record<string, unknown> }) | undefined;
  /** Also write `policy.violation` for a request refused as out of scope or unresolvable (as EKS does). */
  recordViolations?: boolean | undefined;
  /** A hint for refusing other targets (e.g. DynamoDB Streams) with a clear message. */
  explainUnknownTarget?: ((target: string) => string | undefined) | undefined;
}

export interface JsonFront {
  app: Hono;
  close(): Promise<void>;
}

/** One request as the stages see it after authentication. */
interface Verified<Scope> {
  grant: Grant<Scope>;
  region: string;
  inbound: InboundAwsRequest;
  target: string;
  operation: string;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export function createJsonFront<RC, Scope, LC>(ctx: PluginContext<RC, Scope, LC>, spec: JsonFrontSpec<RC, Scope>): JsonFront {
  const front = new JsonFrontStages(ctx, spec);
  const app = new Hono();
  app.all('*', (c) => front.handle(c));
  return { app, close: () => front.close() };
}

/** The stages of one request, in the order `handle` runs them. */
class JsonFrontStages<RC, Scope, LC> {
  private readonly upstream = new AwsUpstream();
  private readonly maxBody: number;
  private readonly log: Logger;
  private readonly guard: AuthGuard;

  constructor(
    private readonly ctx: PluginContext<RC, Scope, LC>,
    private readonly spec: JsonFrontSpec<RC, Scope>,
  ) {
    this.maxBody = spec.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.log = ctx.log.child({ service: spec.service });
    this.guard = new AuthGuard(ctx.audit, spec.service, this.log);
  }

  close(): Promise<void> {
    return this.upstream.close();
  }

  async handle(c: Context): Promise<Response> {
    const { ctx, spec } = this;
    const head = requestHead(c);
    const { source, headers } = head;
    let v: Verified<Scope>;
    try {
      v = await this.authenticate(c, head);
    } catch (e) {
      return this.errorResponse(this.guard.failed(e, { source, headers, resourceOf: (id) => ctx.grants.get(id)?.resource }));
    }
    let decided: { decision: JsonDecision; body: Record<string, unknown> };
    try {
      const pending = this.decide(v);
      decided = { body: pending.body, decision: pending.decision instanceof Promise ? await pending.decision : pending.decision };
    } catch (e) {
      await this.recordRefusal(v, e);
      return this.errorResponse(e);
    }
    try {
      return await this.exchangeAndForward(v, decided.decision, decided.body);
    } catch (e) {
      return this.errorResponse(e);
    }
  }

  /** Stage 1, who is asking: nothing is parsed or decided before the signature verifies. */
  private async authenticate(c: Context, head: RequestHead): Promise<Verified<Scope>> {
    const { spec } = this;
    const { headers } = head;
    if (head.method !== 'POST') throw new AwsWireError(ErrorCodes.BAD_REQUEST, `${spec.service} accepts only POST requests`, 'UnknownOperationException');
    const inbound: InboundAwsRequest = {
      method: head.method,
      path: head.path,
      query: head.query,
      headers,
      body: await readBody(c.req.raw, headers['content-length'], this.maxBody),
    };
    const verified = await this.ctx.aws.verifyInbound(inbound, { service: spec.service });
    const target = headers['x-amz-target'] ?? '';
    const operation = target.startsWith(`${spec.targetPrefix}.`) ? target.slice(spec.targetPrefix.length + 1) : '';
    return { grant: verified.grant, region: verified.region, inbound, target, operation };
  }

  /** Stage 2, what is asked and is it inside the grant: the plugin decides. */
  private decide(v: Verified<Scope>): { decision: JsonDecision | Promise<JsonDecision>; body: Record<string, unknown> } {
    const { spec } = this;
    if (!/^[A-Za-z]{1,64}$/.test(v.operation)) {
      const hint = spec.explainUnknownTarget?.(v.target);
      throw new AwsWireError(ErrorCodes.UNRESOLVABLE, hint ?? `X-Amz-Target '${v.target.slice(0, 128)}' is not a ${spec.targetPrefix} operation`, 'UnknownOperationException');
    }
    const resource = this.ctx.resources.get(v.grant.resource);
    if (resource === undefined) {
      throw new AirlockError(ErrorCodes.WRONG_RESOURCE, `grant ${v.grant.id} is for resource ${v.grant.resource}, which this gateway does not serve`);
    }
    const body = parseJsonObject(v.inbound.body);
    return { decision: spec.authorize({ operation: v.operation, body, grant: v.grant, resourceName: v.grant.resource, resource }), body };
  }

  /** A refused request, recorded with the same description as an allowed one (and as a violation where the plugin asks). */
  private async recordRefusal(v: Verified<Scope>, e: unknown): Promise<void> {
    const { ctx, spec } = this;
    const code = isAirlockError(e) ? e.code : ErrorCodes.INTERNAL;
    const reason = isAirlockError(e) ? e.message : 'internal error';
    const described = this.describe(v);
    const writes = [ctx.audit.exchange(v.grant, described).refuse(code, reason)];
    if (spec.recordViolations && (code === ErrorCodes.OUT_OF_SCOPE || code === ErrorCodes.UNRESOLVABLE || code === ErrorCodes.FORBIDDEN)) {
      writes.push(ctx.audit.exchange(v.grant, { type: 'policy.violation', data: described.data }).refuse(code, reason, { violation: code === ErrorCodes.OUT_OF_SCOPE ? 'scope' : 'request' }));
    }
    await Promise.all(writes);
  }

  private describe(v: Verified<Scope>): { type: string; data: Record<string, unknown> } {
    const { ctx, spec } = this;
    const base = { service: spec.service, operation: v.operation || v.target.slice(0, 128) };
    const resource = ctx.resources.get(v.grant.resource);
    if (spec.describe === undefined || resource === undefined || v.operation === '') return { type: 'aws.request', data: base };
    try {
      const described = spec.describe({ operation: v.operation, body: parseJsonObject(v.inbound.body), grant: v.grant, resourceName: v.grant.resource, resource });
      return { type: described.type ?? 'aws.request', data: { ...base, ...described.data } };
    } catch {
      // A body that does not even parse: what is left to say is the operation (and the reason).
      return { type: 'aws.request', data: base };
    }
  }

  /** Stages 3-4 with the exchange: the record is spooled before AWS sees the request. */
  private async exchangeAndForward(v: Verified<Scope>, decision: JsonDecision, body: Record<string, unknown>): Promise<Response> {
    const { spec } = this;
    const exchange = this.ctx.audit.exchange(v.grant, { ...decision.record, resultType: 'aws.response' });
    await exchange.ready();
    if (decision.local !== undefined) {
      await exchange.finish('ok', { service: spec.service, operation: v.operation, status: 200, local: true });
      return new Response(JSON.stringify(decision.local.body), { status: 200, headers: { 'content-type': spec.contentType } });
    }
    const started = performance.now();
    let res: UpstreamResponse;
    try {
      res = await this.forward(v, decision, body);
    } catch (e) {
      await exchange.finish('error', { service: spec.service, operation: v.operation, error: toAwsJsonError(e).message, ms: round(performance.now() - started) });
      return this.errorResponse(e);
    }
    return this.relay(v, exchange, decision, res, round(performance.now() - started));
  }

  /** Stage 3, forward what was checked, signed with airlock's own credentials. */
  private async forward(v: Verified<Scope>, decision: JsonDecision, body: Record<string, unknown>): Promise<UpstreamResponse> {
    const { ctx, spec } = this;
    const credentials = await ctx.aws.credentials({ resource: v.grant.resource, grant: v.grant, sessionPolicy: decision.sessionPolicy });
    // Re-serialized: no JSON parser differences (duplicate keys, odd escapes) between
    // airlock's decision and what AWS executes.
    const request = AwsUpstream.jsonRequest(ctx.aws.endpoint(spec.service, v.region), { 'content-type': spec.contentType, 'x-amz-target': v.target }, JSON.stringify(decision.forwardBody ?? body));
    const signed = await ctx.aws.sign(request, { service: spec.service, region: v.region, credentials });
    return normalizeUpstreamError(await this.upstream.send(signed), spec.errorTypePrefix);
  }

  /** Stage 4, record the outcome (durable before the client sees it), then relay. */
  private async relay(v: Verified<Scope>, exchange: AuditExchange, decision: JsonDecision, res: UpstreamResponse, ms: number): Promise<Response> {
    const inspected = inspectAnswer(res, decision.onSuccess);
    const answer = inspected instanceof Promise ? await inspected : inspected;
    const errorType = errorTypeOf(res);
    await exchange.finish(res.status < 400 && answer.withheld === undefined ? 'ok' : 'error', {
      service: this.spec.service,
      operation: v.operation,
      status: res.status,
      ms,
      ...(errorType === undefined ? {} : { errorType }),
      ...answer.extra,
    });
    if (answer.withheld !== undefined) return this.errorResponse(answer.withheld);
    return new Response(answer.body, { status: res.status, headers: relayedHeaders(res, answer.replaced, this.spec.contentType) });
  }

  private errorResponse(error: unknown): Response {
    const mapped = toAwsJsonError(error);
    if (mapped.status >= 500) this.log.warn({ err: error instanceof Error ? error.message : String(error) }, 'request failed');
    return new Response(awsJsonErrorBody(mapped, this.spec.errorTypePrefix), {
      status: mapped.status,
      headers: { 'content-type': this.spec.contentType, 'x-amzn-errortype': mapped.type },
    });
  }
}
