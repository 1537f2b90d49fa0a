/**
 * Outbound SigV4 with airlock's own credentials.
 *
 * The AWS JSON protocol's requests (a POST with a body and no query string, every request
 * of DynamoDB and SSM) are signed here directly: the payload hashed once, the canonical
 * request built in one pass, the derived key cached per credentials and day. It produces
 * exactly what @smithy/signature-v4 produces for the same request and time (same headers
 * added — x-amz-date, x-amz-content-sha256, x-amz-security-token — the same unsignable
 * headers left out); a test holds the two together on randomized requests and on AWS's
 * published test vectors. Anything else (a query string, a streamed body, presigning)
 * goes through smithy's signer, cached per credentials, service and region.
 */
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity } from '@smithy/types';
import { canonicalPath } from './sigv4-inbound.ts';
import { ALGORITHM, EMPTY_SHA256, SigningKeyCache, amzDate, canonicalHeaderValue, canonicalRequest, sha256Hex, signatureHex, stringToSign } from './sigv4.ts';

const MAX_SIGNERS = 256;
const sha256 = Hash.bind(null, 'sha256');

/** Headers smithy never signs (its ALWAYS_UNSIGNABLE_HEADERS), and the ones signing regenerates. */
const UNSIGNABLE = new Set(['authorization', 'cache-control', 'connection', 'expect', 'from', 'keep-alive', 'max-forwards', 'pragma', 'referer', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'x-amzn-trace-id']);
const GENERATED = new Set(['authorization', 'x-amz-date', 'date']);

export class Signer {
  private readonly signers = new Map<string, SignatureV4>();
  private readonly keys = new SigningKeyCache();

  private signerFor(service: string, region: string, credentials: AwsCredentialIdentity): SignatureV4 {
    const key = `${credentials.accessKeyId}\0${credentials.sessionToken ?? ''}\0${service}\0${region}`;
    let signer = this.signers.get(key);
    if (signer === undefined) {
      // Bounded: role sessions come and go; the oldest signer is dropped first.
      if (this.signers.size >= MAX_SIGNERS) {
        const oldest = this.signers.keys().next().value;
        if (oldest !== undefined) this.signers.delete(oldest);
      }
      signer = new SignatureV4({ service, region, credentials, sha256 });
      this.signers.set(key, signer);
    }
    return signer;
  }

  async sign(
    request: HttpRequest,
    opts: { service: string; region: string; credentials: AwsCredentialIdentity; signingDate?: Date | undefined },
  ): Promise<HttpRequest> {
    const direct = this.signDirect(request, opts);
    if (direct !== undefined) return direct;
    const signed = await this.signerFor(opts.service, opts.region, opts.credentials).sign(request, opts.signingDate === undefined ? {} : { signingDate: opts.signingDate });
    return signed as HttpRequest;
  }

  /** The JSON-protocol fast path; undefined when the request needs the general signer. */
  signDirect(
    request: HttpRequest,
    opts: { service: string; region: string; credentials: AwsCredentialIdentity; signingDate?: Date | undefined },
  ): HttpRequest | undefined {
    const body: unknown = request.body;
    if (Object.keys(request.query ?? {}).length > 0) return undefined;
    if (body !== undefined && body !== null && typeof body !== 'string' && !(body instanceof Uint8Array)) return undefined;
    const { credentials, region, service } = opts;
    const longDate = amzDate(opts.signingDate ?? new Date());
    const shortDate = longDate.slice(0, 8);
    const headers: Record<string, string> = {};
    let payloadHash: string | undefined;
    for (const name of Object.keys(request.headers)) {
      const value = request.headers[name];
      if (value === undefined || value === null) continue;
      const lower = name.toLowerCase();
      if (GENERATED.has(lower)) continue;
      if (lower === 'x-amz-content-sha256') payloadHash ??= value;
      headers[name] = value;
    }
    headers['x-amz-date'] = longDate;
    if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken;
    if (payloadHash === undefined) {
      payloadHash = body === undefined || body === null ? EMPTY_SHA256 : sha256Hex(body);
      headers['x-amz-content-sha256'] = payloadHash;
    }
    // Canonical headers keyed by lower-case name; a later spelling of a name wins, as in smithy.
    const canonical = new Map<string, string>();
    for (const name of Object.keys(headers).sort()) {
      const lower = name.toLowerCase();
      if (UNSIGNABLE.has(lower) || lower.startsWith('proxy-') || lower.startsWith('sec-')) continue;
      canonical.set(lower, canonicalHeaderValue(headers[name]!));
    }
    const names = [...canonical.keys()].sort();
    const values = names.map((n) => canonical.get(n)!);
    const scope = shortDate + '/' + region + '/' + service + '/aws4_request';
    const creq = canonicalRequest(request.method, canonicalPath(request.path), '', names, values, payloadHash);
    const signature = signatureHex(this.keys.get(credentials, shortDate, region, service), stringToSign(longDate, scope, creq));
    headers['authorization'] = `${ALGORITHM} Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
    return new HttpRequest({ ...request, headers });
  }

  async presign(
    request: HttpRequest,
    opts: { service: string; region: string; credentials: AwsCredentialIdentity; expiresIn: number; signingDate?: Date },
  ): Promise<HttpRequest> {
    const signer = this.signerFor(opts.service, opts.region, opts.credentials);
    const presigned = await signer.presign(request, {
      expiresIn: opts.expiresIn,
      ...(opts.signingDate === undefined ? {} : { signingDate: opts.signingDate }),
    });
    return presigned as HttpRequest;
  }

  clear(): void {
    this.signers.clear();
    this.keys.clear();
  }
}
