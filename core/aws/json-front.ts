/**
 * The front of an AWS JSON-protocol service (DynamoDB, SSM): one POST endpoint where an
 * unmodified SDK or aws CLI sends `X-Amz-Target: <Prefix>.<Operation>` requests signed with
 * a grant-issued key. For every request, in this order:
 *
 *   verify the signature → parse → the plugin decides (scope) → record, await `spooled`
 *   → sign with airlock's credentials → forward → record the result → await `durable`
 *   → relay the upstream answer.
 *
 * Every refusal is recorded (`auth.failed` before a grant is proven, else the plugin's
 * record type with outcome `denied`) and answered with the AWS JSON error shape the SDKs
 * parse. The plugin supplies only `authorize`; the wire handling lives here once.
 */
import { Hono, type Context } from 'hono';
import { AirlockError, ErrorCodes, isAirlockError } from '../errors.ts';
import type { AnyScope, AuditReceipt, Grant, InboundAwsRequest, PluginContext } from '../plugin.ts';
import { AwsWireError, awsJsonErrorBody, toAwsJsonError } from './errors.ts';
import { DEFAULT_MAX_BODY_BYTES, parseAuthorization } from './sigv4-inbound.ts';
import { AwsUpstream, type UpstreamResponse } from './upstream.ts';
import { FailureLimiter } from '../api/rate-limit.ts';

export interface AuthorizeInput<RC, Scope = AnyScope> {
  operation: string;
  /** The request's JSON body, already parsed (an object). */
  body: Record<string, unknown>;
  grant: Grant<Scope>;
  resourceName: string;
  resource: RC;
}

export interface JsonDecision {
  /** Written before the request is forwarded (or answered locally); its `spooled` is awaited. */
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
  onSuccess?: ((body: Buffer) => { body?: Buffer | undefined; data?: Record<string, unknown> | undefined }) | undefined;
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
  /** Decide one request: return what to record and forward, or throw an AirlockError. */
  authorize(input: AuthorizeInput<RC, Scope>): JsonDecision;
  /** Largest request body (default 1 MiB). */
  maxBodyBytes?: number | undefined;
  /** A hint for refusing other targets (e.g. DynamoDB Streams) with a clear message. */
  explainUnknownTarget?: ((target: string) => string | undefined) | undefined;
}

/**
 * Failed authentications one address may cause per minute before it is refused unheard.
 * Secrets are 240-bit, so this is not about guessing: it keeps a misbehaving client from
 * flooding the audit with `auth.failed` records (one record notes the block instead).
 */
const AUTH_FAILURES_PER_MINUTE = 100;

/** Response headers worth relaying: the body's type and checksum, the AWS request id. */
const RELAYED_HEADERS = ['content-type', 'x-amzn-requestid', 'x-amz-crc32', 'x-amz-id-2'];

export interface JsonFront {
  app: Hono;
  close(): Promise<void>;
}

function sourceOf(c: Context): string | undefined {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string; remotePort?: number } } } | undefined;
  const socket = env?.incoming?.socket;
  if (socket?.remoteAddress === undefined) return undefined;
  return `${socket.remoteAddress}:${socket.remotePort ?? ''}`;
}

/** Read a request body, refusing (before buffering it all) anything over `limit` bytes. */
async function readBody(request: Request, limit: number): Promise<Uint8Array> {
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > limit) {
    throw new AwsWireError(ErrorCodes.TOO_LARGE, `Request body is larger than ${limit} bytes`, 'RequestEntityTooLarge');
  }
  // A declared length bounds the body (Node's parser holds the client to it), so read it in
  // one go: @hono/node-server then buffers it straight from the socket, where touching
  // `request.body` would build a web ReadableStream per request (measured: ~14% of CPU).
  if (declared !== null && /^\d+$/.test(declared)) return new Uint8Array(await request.arrayBuffer());
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new AwsWireError(ErrorCodes.TOO_LARGE, `Request body is larger than ${limit} bytes`, 'RequestEntityTooLarge');
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/**
 * Moto (and some proxies) answer JSON services with XML errors; the SDKs cannot parse those.
 * Turn a non-JSON error body into the JSON shape with the same status.
 */
function normalizeUpstreamError(res: UpstreamResponse, typePrefix: string): UpstreamResponse {
  const type = res.headers['content-type'] ?? '';
  if (res.status < 400 || type.includes('json')) return res;
  const text = res.body.toString('utf8');
  const xmlCode = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  // JSON services name this error AccessDeniedException; the XML layer says AccessDenied.
  const code = xmlCode === 'AccessDenied' || (xmlCode === undefined && res.status === 403) ? 'AccessDeniedException' : (xmlCode ?? 'InternalServerError');
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? `upstream answered HTTP ${res.status}`;
  return {
    status: res.status,
    headers: { ...res.headers, 'content-type': 'application/x-amz-json-1.0' },
    body: Buffer.from(awsJsonErrorBody({ status: res.status, type: code, message }, typePrefix)),
  };
}

function errorTypeOf(res: UpstreamResponse): string | undefined {
  if (res.status < 400) return undefined;
  try {
    const parsed = JSON.parse(res.body.toString('utf8')) as { __type?: unknown };
    if (typeof parsed.__type === 'string') return parsed.__type.slice(parsed.__type.lastIndexOf('#') + 1);
  } catch {
    // not JSON: the status says enough
  }
  return undefined;
}

export function createJsonFront<RC, Scope, LC>(ctx: PluginContext<RC, Scope, LC>, spec: JsonFrontSpec<RC, Scope>): JsonFront {
  const app = new Hono();
  const upstream = new AwsUpstream();
  const maxBody = spec.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const log = ctx.log.child({ service: spec.service });
  const failures = new FailureLimiter(AUTH_FAILURES_PER_MINUTE, 60_000);
  /** When each blocked address was last noted in the audit. */
  const blockNoted = new Map<string, number>();

  function errorResponse(error: unknown): Response {
    const mapped = toAwsJsonError(error);
    if (mapped.status >= 500) log.warn({ err: error instanceof Error ? error.message : String(error) }, 'request failed');
    return new Response(awsJsonErrorBody(mapped, spec.errorTypePrefix), {
      status: mapped.status,
      headers: { 'content-type': spec.contentType, 'x-amzn-errortype': mapped.type },
    });
  }

  /** Best effort: which key the client claimed, for `auth.failed`. Never the secret. */
  function claimedKey(headers: Record<string, string>): string | undefined {
    const authorization = headers['authorization'];
    if (authorization === undefined) return undefined;
    try {
      return parseAuthorization(authorization).accessKeyId;
    } catch {
      return undefined;
    }
  }

  async function awaitReceipt(receipt: AuditReceipt, which: 'spooled' | 'durable'): Promise<void> {
    try {
      await receipt[which];
    } catch (e) {
      throw new AirlockError(ErrorCodes.AUDIT_UNAVAILABLE, 'airlock cannot record this request (audit unavailable); refused', { cause: e });
    }
  }

  /** Refuse an address past its failure budget; note it in the audit once a minute. */
  function throttled(address: string, source: string | undefined): Response | undefined {
    if (!failures.blocked(address)) return undefined;
    const now = Date.now();
    if ((blockNoted.get(address) ?? 0) < now - 60_000) {
      blockNoted.set(address, now);
      if (blockNoted.size > 10_000) blockNoted.clear();
      try {
        ctx.audit.authFailed({
          source,
          code: ErrorCodes.RATE_LIMITED,
          reason: `more than ${AUTH_FAILURES_PER_MINUTE} failed authentications in a minute; refusing this address for now`,
          data: { service: spec.service },
        });
      } catch (auditError) {
        log.error({ err: String(auditError) }, 'cannot record auth.failed');
      }
    }
    return errorResponse(new AirlockError(ErrorCodes.RATE_LIMITED, 'Too many failed authentications from this address; retry later'));
  }

  async function handle(c: Context): Promise<Response> {
    const source = sourceOf(c);
    const address = source?.slice(0, source.lastIndexOf(':')) ?? 'unknown';
    const refused = throttled(address, source);
    if (refused !== undefined) return refused;
    const url = new URL(c.req.url);
    const headers: Record<string, string> = {};
    c.req.raw.headers.forEach((value, name) => {
      headers[name.toLowerCase()] = value;
    });

    // 1. Who is asking: nothing is parsed or decided before the signature verifies.
    let inbound: InboundAwsRequest;
    let grant: Grant<Scope>;
    let region: string;
    try {
      if (c.req.method !== 'POST') {
        throw new AwsWireError(ErrorCodes.BAD_REQUEST, `${spec.service} accepts only POST requests`, 'UnknownOperationException');
      }
      const body = await readBody(c.req.raw, maxBody);
      inbound = {
        method: c.req.method,
        path: url.pathname,
        query: url.search.startsWith('?') ? url.search.slice(1) : url.search,
        headers,
        body,
      };
      const verified = await ctx.aws.verifyInbound(inbound, { service: spec.service });
      grant = verified.grant;
      region = verified.region;
    } catch (e) {
      failures.fail(address);
      const claimedId = claimedKey(headers);
      const code = isAirlockError(e) ? e.code : ErrorCodes.INTERNAL;
      const known = claimedId === undefined ? undefined : ctx.grants.get(claimedId);
      try {
        ctx.audit.authFailed({
          resource: known?.resource,
          claimedId,
          source,
          code,
          reason: isAirlockError(e) ? e.message : 'internal error',
          data: { service: spec.service, target: headers['x-amz-target']?.slice(0, 128) },
        });
      } catch (auditError) {
        log.error({ err: String(auditError) }, 'cannot record auth.failed');
      }
      return errorResponse(e);
    }

    // 2. What is asked, and is it inside the grant.
    const target = headers['x-amz-target'] ?? '';
    const operation = target.startsWith(`${spec.targetPrefix}.`) ? target.slice(spec.targetPrefix.length + 1) : '';
    let decision: JsonDecision;
    let parsed: Record<string, unknown>;
    const resourceName = grant.resource;
    try {
      if (!/^[A-Za-z]{1,64}$/.test(operation)) {
        const hint = spec.explainUnknownTarget?.(target);
        throw new AwsWireError(
          ErrorCodes.UNRESOLVABLE,
          hint ?? `X-Amz-Target '${target.slice(0, 128)}' is not a ${spec.targetPrefix} operation`,
          'UnknownOperationException',
        );
      }
      const resource = ctx.resources.get(grant.resource);
      if (resource === undefined) {
        throw new AirlockError(ErrorCodes.WRONG_RESOURCE, `grant ${grant.id} is for resource ${grant.resource}, which this gateway does not serve`);
      }
      let body: unknown;
      try {
        body = inbound.body.byteLength === 0 ? {} : JSON.parse(Buffer.from(inbound.body).toString('utf8'));
      } catch {
        throw new AwsWireError(ErrorCodes.BAD_REQUEST, 'Request body is not valid JSON', 'SerializationException');
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new AwsWireError(ErrorCodes.BAD_REQUEST, 'Request body must be a JSON object', 'SerializationException');
      }
      parsed = body as Record<string, unknown>;
      decision = spec.authorize({ operation, body: parsed, grant, resourceName, resource });
    } catch (e) {
      const code = isAirlockError(e) ? e.code : ErrorCodes.INTERNAL;
      try {
        const receipt = ctx.audit.record({
          type: 'aws.request',
          grant,
          data: {
            service: spec.service,
            operation: operation || target.slice(0, 128),
            code,
            reason: isAirlockError(e) ? e.message : 'internal error',
          },
          outcome: code === ErrorCodes.INTERNAL ? 'error' : 'denied',
        });
        await awaitReceipt(receipt, 'durable');
      } catch (auditError) {
        log.error({ err: String(auditError) }, 'cannot record a denied request');
      }
      return errorResponse(e);
    }

    // 3. Record, then act: the record is in the spool before AWS sees the request.
    try {
      const requestReceipt = ctx.audit.record({ type: decision.record.type, grant, data: decision.record.data, outcome: 'ok' });
      await awaitReceipt(requestReceipt, 'spooled');

      if (decision.local !== undefined) {
        await awaitReceipt(requestReceipt, 'durable');
        return new Response(JSON.stringify(decision.local.body), { status: 200, headers: { 'content-type': spec.contentType } });
      }

      const started = performance.now();
      let res: UpstreamResponse;
      try {
        const credentials = await ctx.aws.credentials({ resource: resourceName, grant, sessionPolicy: decision.sessionPolicy });
        // Forward what was checked, re-serialized: no JSON parser differences (duplicate
        // keys, odd escapes) between airlock's decision and what AWS executes.
        const forwardBody = JSON.stringify(decision.forwardBody ?? parsed);
        const request = AwsUpstream.jsonRequest(
          ctx.aws.endpoint(spec.service, region),
          { 'content-type': spec.contentType, 'x-amz-target': target },
          forwardBody,
        );
        const signed = await ctx.aws.sign(request, { service: spec.service, region, credentials });
        res = normalizeUpstreamError(await upstream.send(signed), spec.errorTypePrefix);
      } catch (e) {
        const mapped = toAwsJsonError(e);
        const failed = ctx.audit.record({
          type: 'aws.response',
          grant,
          data: { service: spec.service, operation, requestSeq: requestReceipt.seq, error: mapped.message, ms: round(performance.now() - started) },
          outcome: 'error',
        });
        await awaitReceipt(requestReceipt, 'durable');
        await awaitReceipt(failed, 'spooled');
        return errorResponse(e);
      }
      const ms = round(performance.now() - started);

      let body = res.body;
      let extra: Record<string, unknown> | undefined;
      let replaced = false;
      let withheld: unknown;
      if (res.status < 300 && decision.onSuccess !== undefined) {
        try {
          const out = decision.onSuccess(res.body);
          if (out.body !== undefined) {
            body = out.body;
            replaced = true;
          }
          extra = out.data;
        } catch (e) {
          // AWS did the work but airlock cannot vouch for the answer (e.g. cannot filter
          // it): the client gets an error, and the record says so.
          withheld = e;
          extra = { withheld: toAwsJsonError(e).message };
        }
      }
      const errorType = errorTypeOf(res);
      const resultReceipt = ctx.audit.record({
        type: 'aws.response',
        grant,
        data: {
          service: spec.service,
          operation,
          requestSeq: requestReceipt.seq,
          status: res.status,
          ms,
          ...(errorType === undefined ? {} : { errorType }),
          ...extra,
        },
        outcome: res.status < 400 && withheld === undefined ? 'ok' : 'error',
      });
      // The client sees the result only once the request's record is durable.
      await awaitReceipt(requestReceipt, 'durable');
      await awaitReceipt(resultReceipt, 'spooled');
      if (withheld !== undefined) return errorResponse(withheld);

      const outHeaders: Record<string, string> = {};
      for (const name of RELAYED_HEADERS) {
        const value = res.headers[name];
        if (value === undefined) continue;
        // The CRC covers the original body only.
        if (name === 'x-amz-crc32' && replaced) continue;
        outHeaders[name] = value;
      }
      outHeaders['content-type'] ??= spec.contentType;
      return new Response(body, { status: res.status, headers: outHeaders });
    } catch (e) {
      return errorResponse(e);
    }
  }

  app.all('*', handle);
  return { app, close: () => upstream.close() };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
