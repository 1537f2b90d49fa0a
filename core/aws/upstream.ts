/**
 * HTTP to AWS service endpoints: one undici keep-alive Agent per AWS layer, so requests to
 * the same endpoint reuse warm connections (TLS handshakes dominate otherwise).
 */
import { HttpRequest } from '@smithy/protocol-http';
import { Agent, errors as undiciErrors } from 'undici';
import { AirlockError, ErrorCodes } from '../errors.ts';
import { BoundedMemo } from './memo.ts';

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
    // undici stops reading (and fails the request) past this, so a huge answer is never buffered.
    maxResponseSize: MAX_RESPONSE_BYTES,
  });

  /** A POST to `endpoint` (which may carry a base path), ready to be signed. */
  static jsonRequest(endpoint: string, headers: Record<string, string>, body: string): HttpRequest {
    const target = endpointOf(endpoint);
    return new HttpRequest({
      method: 'POST',
      protocol: target.protocol,
      hostname: target.hostname,
      ...(target.port === undefined ? {} : { port: target.port }),
      path: target.path,
      headers: { ...headers, host: target.host },
      body,
    });
  }

  /** Send a signed request; network failures become UPSTREAM_FAILED. */
  async send(signed: HttpRequest): Promise<UpstreamResponse> {
    const port = signed.port === undefined ? '' : `:${signed.port}`;
    // The dispatcher's own request({ origin, path }): `request(url)` parses a URL per call.
    const origin = `${signed.protocol}//${signed.hostname}${port}`;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(signed.headers)) {
      // undici sets host from the origin; a second one would be a malformed request.
      if (name.toLowerCase() !== 'host') headers[name] = value;
    }
    try {
      const res = await this.agent.request({
        origin,
        path: signed.path,
        method: signed.method as 'POST',
        headers,
        body: signed.body as string | Uint8Array | undefined,
      });
      const body = Buffer.from(await res.body.arrayBuffer());
      const out: Record<string, string> = {};
      for (const [name, value] of Object.entries(res.headers)) {
        if (value === undefined) continue;
        out[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
      }
      return { status: res.statusCode, headers: out, body };
    } catch (e) {
      if (e instanceof undiciErrors.ResponseExceededMaxSizeError) throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, 'upstream response is too large', { cause: e });
      const reason = e instanceof Error ? e.message : String(e);
      throw new AirlockError(ErrorCodes.UPSTREAM_FAILED, `cannot reach ${signed.hostname}${port}: ${reason}`, { cause: e });
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

interface Endpoint {
  protocol: string;
  hostname: string;
  port: number | undefined;
  host: string;
  path: string;
}

/** A service has one endpoint per region: parsed once, not per request. */
const endpoints = new BoundedMemo<Endpoint>(64, 2048);

function endpointOf(endpoint: string): Endpoint {
  return endpoints.getOrCompute(endpoint, parseEndpoint);
}

function parseEndpoint(endpoint: string): Endpoint {
  const url = new URL(endpoint);
  return { protocol: url.protocol, hostname: url.hostname, port: url.port === '' ? undefined : Number(url.port), host: url.host, path: url.pathname === '' ? '/' : url.pathname };
}
