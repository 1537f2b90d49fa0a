/**
 * HTTP to AWS service endpoints: one undici keep-alive Agent per AWS layer, so requests to
 * the same endpoint reuse warm connections (TLS handshakes dominate otherwise).
 */
import { HttpRequest } from '@smithy/protocol-http';
import { Agent, request as undiciRequest } from 'undici';
import { AirlockError, ErrorCodes } from '../errors.ts';

export interface UpstreamResponse {
  status: number;
  /** Lower-case names; multi-valued headers joined with ','. */
  headers: Record<string, string>;
  body: Buffer;
}

/** Largest upstream response airlock buffers (BatchGetItem answers reach 16 MiB). */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export class AwsUpstream {
  private readonly agent = new Agent({
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 120_000,
    connections: 128,
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });

  /** A POST to `endpoint` (which may carry a base path), ready to be signed. */
  static jsonRequest(endpoint: string, headers: Record<string, string>, body: string): HttpRequest {
    const url = new URL(endpoint);
    const path = url.pathname === '' ? '/' : url.pathname;
    return new HttpRequest({
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port === '' ? {} : { port: Number(url.port) }),
      path,
      headers: { ...headers, host: url.host },
      body,
    });
  }

  /** Send a signed request; network failures become UPSTREAM_FAILED. */
  async send(signed: HttpRequest): Promise<UpstreamResponse> {
    const port = signed.port === undefined ? '' : `:${signed.port}`;
    const url = `${signed.protocol}//${signed.hostname}${port}${signed.path}`;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(signed.headers)) {
      // undici sets host from the URL; a second one would be a malformed request.
      if (name.toLowerCase() !== 'host') headers[name] = value;
    }
    try {
      const res = await undiciRequest(url, {
        dispatcher: this.agent,
        method: signed.method as 'POST',
        headers,
        body: signed.body as string | Uint8Array | undefined,
      });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        size += buf.length;
        if (size > MAX_RESPONSE_BYTES) {
          res.body.destroy();
          throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, 'upstream response is too large');
        }
        chunks.push(buf);
      }
      const out: Record<string, string> = {};
      for (const [name, value] of Object.entries(res.headers)) {
        if (value === undefined) continue;
        out[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
      }
      return { status: res.statusCode, headers: out, body: Buffer.concat(chunks) };
    } catch (e) {
      if (e instanceof AirlockError) throw e;
      const reason = e instanceof Error ? e.message : String(e);
      throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, `cannot reach ${signed.hostname}${port}: ${reason}`, { cause: e });
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
