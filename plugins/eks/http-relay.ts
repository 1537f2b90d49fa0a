/**
 * Plain HTTP requests to the cluster: one undici request through the cluster's TLS agent,
 * the response streamed back with backpressure (the web stream pulls from the upstream
 * body only as fast as the client reads). Long streams (watches, `logs -f`) are tied to a
 * core session: when the grant expires or is revoked the stream gets a last word and ends.
 */
import { request, type Dispatcher } from 'undici';
import { AirlockError, ErrorCodes } from '../../core/errors.ts';
import type { CloseReason, Session } from '../../core/plugin.ts';
import { clientResponseHeaders } from './headers.ts';

/** Larger than any object etcd stores (1.5 MiB) with room for big patches. */
export const MAX_REQUEST_BODY = 8 * 1024 * 1024;
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

export async function readCappedBody(req: Request, max = MAX_REQUEST_BODY): Promise<Buffer | undefined> {
  if (req.body === null) return undefined;
  const declared = Number(req.headers.get('content-length') ?? '0');
  if (declared > max) throw new AirlockError(ErrorCodes.TOO_LARGE, `request body of ${declared} bytes is over the ${max}-byte limit`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > max) throw new AirlockError(ErrorCodes.TOO_LARGE, `request body is over the ${max}-byte limit`);
    chunks.push(chunk);
  }
  return size === 0 ? undefined : Buffer.concat(chunks);
}

export interface UpstreamCall {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  dispatcher: Dispatcher;
  signal: AbortSignal;
}

export async function callUpstream(call: UpstreamCall): Promise<Dispatcher.ResponseData> {
  try {
    return await request(call.url, {
      method: call.method as Dispatcher.HttpMethod,
      headers: call.headers,
      body: call.body ?? null,
      dispatcher: call.dispatcher,
      signal: call.signal,
    });
  } catch (e) {
    if (call.signal.aborted) throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, 'the request was cancelled');
    const err = e as Error & { code?: string };
    throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, `cannot reach the cluster: ${err.code ?? ''} ${err.message}`.trim(), { cause: e });
  }
}

/** Drop an upstream body we will not pass on; its abort error has nobody to tell. */
export function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => {});
  body.destroy();
}

/** A finite response: the upstream body passed through as it arrives. */
export function plainResponse(method: string, res: Dispatcher.ResponseData): Response {
  const headers = clientResponseHeaders(res.headers);
  if (method === 'HEAD' || NULL_BODY_STATUSES.has(res.statusCode)) {
    discard(res.body);
    return new Response(null, { status: res.statusCode, headers });
  }
  return new Response(pullStream(res.body, undefined), { status: res.statusCode, headers });
}

export interface StreamEnd {
  /** Bytes to write before ending (the watch's ERROR event, the log's last line). */
  farewell: (reason: CloseReason, message: string) => Uint8Array | undefined;
}

/**
 * A long-lived response tied to a session: the client's disconnect ends the session, the
 * session's end (expiry, revocation) ends the stream with a farewell.
 */
export function sessionStreamResponse(
  res: Dispatcher.ResponseData,
  session: Session<unknown>,
  end: StreamEnd,
  abortUpstream: () => void,
): Response {
  const headers = clientResponseHeaders(res.headers);
  const stream = pullStream(res.body, { session, end, abortUpstream });
  return new Response(stream, { status: res.statusCode, headers });
}

function pullStream(
  body: Dispatcher.ResponseData['body'],
  live: { session: Session<unknown>; end: StreamEnd; abortUpstream: () => void } | undefined,
): ReadableStream<Uint8Array> {
  const iterator = (body as unknown as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  let bytes = 0;
  let cut: ((v: { reason: CloseReason; message: string }) => void) | undefined;
  const cutPromise = new Promise<{ reason: CloseReason; message: string }>((resolve) => (cut = resolve));
  // Known synchronously: once the core cut the session, the upstream's abort error (which
  // may settle first) must not replace the farewell.
  let cutWith: { reason: CloseReason; message: string } | undefined;
  let done = false;
  live?.session.attachCloser((reason, message) => {
    cutWith = { reason, message };
    cut?.(cutWith);
  });

  const close = (): void => {
    done = true;
    discard(body);
    live?.abortUpstream();
  };

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (done) return;
        const sayFarewell = (ended: { reason: CloseReason; message: string }): void => {
          // The core ended the session (expiry, revocation, shutdown): last word, then end.
          const farewell = live?.end.farewell(ended.reason, ended.message);
          if (farewell) controller.enqueue(farewell);
          controller.close();
          close();
        };
        if (cutWith) return sayFarewell(cutWith);
        try {
          const next = live ? await Promise.race([iterator.next(), cutPromise]) : await iterator.next();
          if (cutWith) return sayFarewell(cutWith);
          if ('reason' in next) return sayFarewell(next);
          if (next.done) {
            controller.close();
            done = true;
            live?.session.end('client', { endedBy: 'cluster', bytes });
            return;
          }
          bytes += next.value.length;
          controller.enqueue(new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.byteLength));
        } catch (e) {
          if (cutWith) return sayFarewell(cutWith);
          done = true;
          live?.session.end('error', { error: (e as Error).message, bytes });
          controller.error(e);
        }
      },
      cancel() {
        // The client went away.
        close();
        live?.session.end('client', { endedBy: 'client', bytes });
      },
    },
    { highWaterMark: 1 },
  );
}
