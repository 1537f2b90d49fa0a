/** What comes back from AWS, made fit for the client and the record. */
import { awsJsonErrorBody, toAwsJsonError } from '../errors.ts';
import type { UpstreamResponse } from '../upstream.ts';

/** Response headers worth relaying: the body's type and checksum, the AWS request id. */
const RELAYED_HEADERS = ['content-type', 'x-amzn-requestid', 'x-amz-crc32', 'x-amz-id-2'];

/**
 * Moto (and some proxies) answer JSON services with XML errors; the SDKs cannot parse those.
 * Turn a non-JSON error body into the JSON shape with the same status.
 */
export function normalizeUpstreamError(res: UpstreamResponse, typePrefix: string): UpstreamResponse {
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

export function errorTypeOf(res: UpstreamResponse): string | undefined {
  if (res.status < 400) return undefined;
  try {
    const parsed = JSON.parse(res.body.toString('utf8')) as { __type?: unknown };
    if (typeof parsed.__type === 'string') return parsed.__type.slice(parsed.__type.lastIndexOf('#') + 1);
  } catch {
    // not JSON: the status says enough
  }
  return undefined;
}

export interface InspectedAnswer {
  body: Buffer;
  /** True when `onSuccess` replaced the body (its CRC no longer applies). */
  replaced: boolean;
  /** Extra data for the outcome record. */
  extra: Record<string, unknown> | undefined;
  /** Set when airlock cannot vouch for the answer: the client gets this error instead. */
  withheld: unknown;
}

export interface SuccessOutcome {
  body?: Buffer | undefined;
  data?: Record<string, unknown> | undefined;
}

/** A plugin's look at a 2xx answer; a promise when it must store something first (a command id). */
export type SuccessInspector = (body: Buffer) => SuccessOutcome | Promise<SuccessOutcome>;

/**
 * Run the plugin's `onSuccess` over a 2xx answer (filtering, command ids, capacity). Stays
 * synchronous when the inspector is, so the DynamoDB hot path takes no extra promise hop.
 */
export function inspectAnswer(res: Pick<UpstreamResponse, 'status' | 'body'>, onSuccess: SuccessInspector | undefined): InspectedAnswer | Promise<InspectedAnswer> {
  const answer: InspectedAnswer = { body: res.body, replaced: false, extra: undefined, withheld: undefined };
  if (res.status >= 300 || onSuccess === undefined) return answer;
  try {
    const out = onSuccess(res.body);
    if (out instanceof Promise) return out.then((o) => applied(answer, o), (e: unknown) => withheld(answer, e));
    return applied(answer, out);
  } catch (e) {
    return withheld(answer, e);
  }
}

function applied(answer: InspectedAnswer, out: SuccessOutcome): InspectedAnswer {
  if (out.body !== undefined) {
    answer.body = out.body;
    answer.replaced = true;
  }
  answer.extra = out.data;
  return answer;
}

/** AWS did the work but airlock cannot vouch for the answer (e.g. cannot filter it): the client gets an error, and the record says so. */
function withheld(answer: InspectedAnswer, e: unknown): InspectedAnswer {
  answer.withheld = e;
  answer.extra = { withheld: toAwsJsonError(e).message };
  return answer;
}

export function relayedHeaders(res: UpstreamResponse, replaced: boolean, contentType: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of RELAYED_HEADERS) {
    const value = res.headers[name];
    if (value === undefined) continue;
    // The CRC covers the original body only.
    if (name === 'x-amz-crc32' && replaced) continue;
    out[name] = value;
  }
  out['content-type'] ??= contentType;
  return out;
}
