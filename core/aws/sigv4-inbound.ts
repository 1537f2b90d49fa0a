/**
 * Verify an AWS SigV4 (header form) request signed with a grant-issued access key.
 *
 * The agent signs with the grant id as access key id and the grant secret as secret key,
 * exactly as it would sign for AWS. We rebuild the canonical request from the raw request
 * as received (spec: "Create a canonical request for Signature Version 4"), derive the
 * signing key from the grant store (which keeps only per-date keys, never the secret) and
 * compare signatures in constant time. Everything the client controls is checked before any
 * grant lookup that could be timed, and every failure is a typed AirlockError.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCodes, isAirlockError } from '../errors.ts';
import type { Grant, GrantAuthenticator, InboundAwsRequest, VerifiedAwsRequest } from '../plugin.ts';
import { AwsWireError } from './errors.ts';
import { BoundedMemo } from './memo.ts';
import { ALGORITHM, canonicalHeaderValue, canonicalRequest, sha256Hex, stringToSign } from './sigv4.ts';

/** AWS accepts requests whose X-Amz-Date is within 5 minutes of its clock. */
export const MAX_SKEW_MS = 5 * 60 * 1000;
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export interface InboundVerifierOptions<Scope> {
  grants: GrantAuthenticator<Scope>;
  /** The region a grant's resource lives in: the only region its signatures may name. */
  regionOf(grant: Grant<unknown>): string;
  maxBodyBytes?: number | undefined;
  /** Clock, for tests. */
  now?: (() => number) | undefined;
}

interface ParsedAuthorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: readonly string[];
  /** The same names, for lookups. */
  signed: ReadonlySet<string>;
  signature: string;
}

function incomplete(message: string): AwsWireError {
  return new AwsWireError(ErrorCodes.BAD_REQUEST, message, 'IncompleteSignatureException');
}

const SIGNATURE_FIELD = 'Signature=';
const SIGNATURE_TAIL = SIGNATURE_FIELD.length + 64;
const HEX_SIGNATURE = /^[0-9a-f]{64}$/;

/**
 * What precedes the signature, parsed: a client sends the same Credential and SignedHeaders
 * on every request of a day, so only the signature is new. A pure function of that text, so
 * a remembered parse is exactly what parsing it again would give (bounded, start-over when
 * full). An SDK's prefix is about 200 characters; a longer one is parsed every time.
 */
const parsedPrefixes = new BoundedMemo<Omit<ParsedAuthorization, 'signature'>>(1024, 512);

/** `AWS4-HMAC-SHA256 Credential=AKID/yyyymmdd/region/service/aws4_request, SignedHeaders=a;b, Signature=hex` */
export function parseAuthorization(header: string): ParsedAuthorization {
  const trimmed = header.trim();
  const at = trimmed.length - SIGNATURE_TAIL;
  const signatureLast = at > 0 && trimmed.startsWith(SIGNATURE_FIELD, at);
  if (signatureLast) {
    const known = parsedPrefixes.get(trimmed.slice(0, at));
    const signature = trimmed.slice(at + SIGNATURE_FIELD.length);
    if (known !== undefined && HEX_SIGNATURE.test(signature)) {
      // Field by field: a spread of the remembered object takes V8's slow define path.
      return { accessKeyId: known.accessKeyId, date: known.date, region: known.region, service: known.service, signedHeaders: known.signedHeaders, signed: known.signed, signature };
    }
  }
  const parsed = parseAuthorizationFully(trimmed);
  if (signatureLast) {
    const { signature: _signature, ...prefix } = parsed;
    parsedPrefixes.set(trimmed.slice(0, at), prefix);
  }
  return parsed;
}

/** `AWS4-HMAC-SHA256 Credential=AKID/yyyymmdd/region/service/aws4_request, SignedHeaders=a;b, Signature=hex` */
function parseAuthorizationFully(trimmed: string): ParsedAuthorization {
  if (!trimmed.startsWith(`${ALGORITHM} `)) {
    throw incomplete(`Authorization header must use ${ALGORITHM}`);
  }
  const fields = new Map<string, string>();
  for (const part of trimmed.slice(ALGORITHM.length).split(',')) {
    const piece = part.trim();
    const eq = piece.indexOf('=');
    if (eq <= 0) throw incomplete('Authorization header is malformed');
    const name = piece.slice(0, eq);
    if (fields.has(name)) throw incomplete(`Authorization header repeats ${name}`);
    fields.set(name, piece.slice(eq + 1));
  }
  const credential = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (credential === undefined || signedHeaders === undefined || signature === undefined || fields.size !== 3) {
    throw incomplete('Authorization header needs exactly Credential, SignedHeaders and Signature');
  }
  const scope = credential.split('/');
  if (scope.length !== 5 || scope[4] !== 'aws4_request') {
    throw incomplete('Credential must be <access key>/<date>/<region>/<service>/aws4_request');
  }
  const [accessKeyId, date, region, service] = scope as [string, string, string, string, string];
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(accessKeyId)) throw incomplete('Credential access key id is malformed');
  if (!/^\d{8}$/.test(date)) throw incomplete('Credential date must be yyyymmdd');
  if (!/^[a-z0-9-]{1,64}$/.test(region) || !/^[a-z0-9-]{1,64}$/.test(service)) {
    throw incomplete('Credential region or service is malformed');
  }
  if (!/^[0-9a-f]{64}$/.test(signature)) throw incomplete('Signature must be 64 lower-case hex digits');
  const names = signedHeaders.split(';');
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) throw incomplete(`SignedHeaders has an invalid name: ${name}`);
    // Sorted and unique is what every signer produces; anything else is not a real signature.
    if (i > 0 && !((names[i - 1] as string) < name)) throw incomplete('SignedHeaders must be sorted and unique');
  }
  return { accessKeyId, date, region, service, signedHeaders: names, signed: new Set(names), signature };
}

/** RFC 3986 encoding with only unreserved characters left as they are (SigV4 UriEncode). */
export function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function safeDecode(component: string): string {
  try {
    return decodeURIComponent(component);
  } catch {
    throw new AwsWireError(ErrorCodes.BAD_REQUEST, 'request path or query has a malformed percent-encoding', 'IncompleteSignatureException');
  }
}

/**
 * Canonical URI for every service but S3: remove dot segments and empty segments, then
 * URI-encode the path as received. The path on the wire is already encoded once, so this
 * encodes each segment twice, as the SDKs (smithy `uriEscapePath`, botocore) do when signing.
 */
export function canonicalPath(rawPath: string): string {
  return canonicalPaths.getOrCompute(rawPath, computeCanonicalPath);
}

/** A service is reached at one or two paths; remembered (bounded) instead of re-encoded per request. */
const canonicalPaths = new BoundedMemo<string>(256, 256);

function computeCanonicalPath(rawPath: string): string {
  const segments: string[] = [];
  for (const segment of rawPath.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalized = `${rawPath.startsWith('/') ? '/' : ''}${segments.join('/')}${segments.length > 0 && rawPath.endsWith('/') ? '/' : ''}`;
  return uriEncode(normalized).replace(/%2F/g, '/') || '/';
}

/** Canonical query: decode each name and value, encode strictly, sort by name then value. */
export function canonicalQuery(rawQuery: string): string {
  if (rawQuery === '') return '';
  const pairs: Array<[string, string]> = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    pairs.push([uriEncode(safeDecode(name)), uriEncode(safeDecode(value))]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

/** Requests signed in the same second carry the same X-Amz-Date. */
const amzDates = new BoundedMemo<number>(64, 16);

/** `yyyymmddThhmmssZ` as epoch ms, or NaN. */
function parseAmzDate(value: string): number {
  return amzDates.getOrCompute(value, computeAmzDate);
}

function computeAmzDate(value: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return Number.NaN;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const check = new Date(ms);
  // Reject dates Date.UTC silently rolls over (Feb 30, hour 25).
  if (check.getUTCDate() !== d || check.getUTCHours() !== h || check.getUTCMonth() !== mo - 1) return Number.NaN;
  return ms;
}

export function createInboundVerifier<Scope>(options: InboundVerifierOptions<Scope>) {
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const now = options.now ?? Date.now;

  return async function verifyInbound(
    request: InboundAwsRequest,
    expect: { service: string },
  ): Promise<VerifiedAwsRequest<Scope>> {
    if (request.body.byteLength > maxBody) {
      throw new AirlockTooLarge(maxBody);
    }
    const authorization = request.headers['authorization'];
    if (authorization === undefined || authorization === '') {
      if (/(^|&)X-Amz-Signature=/i.test(request.query)) {
        throw incomplete('query-string (presigned) authentication is not accepted here; sign the Authorization header');
      }
      throw new AwsWireError(ErrorCodes.BAD_CREDENTIAL, 'Request is missing Authentication Token', 'MissingAuthenticationTokenException');
    }
    const auth = parseAuthorization(authorization);

    if (auth.service !== expect.service) {
      throw new AirlockErrorSigned(
        ErrorCodes.REQUEST_EXPIRED,
        `Credential should be scoped to correct service: '${expect.service}' (the request is signed for '${auth.service}')`,
      );
    }
    const signed = auth.signed;
    for (const required of ['host', 'x-amz-date']) {
      if (!signed.has(required)) throw incomplete(`the ${required} header must be signed`);
    }
    for (const name of auth.signedHeaders) {
      if (request.headers[name] === undefined) throw incomplete(`signed header ${name} is not in the request`);
    }
    // An unsigned x-amz-* header (the operation in X-Amz-Target, a security token) could be
    // swapped in transit without breaking the signature: refuse rather than trust it.
    for (const name of Object.keys(request.headers)) {
      if (name.startsWith('x-amz-') && !signed.has(name)) throw incomplete(`header ${name} must be signed`);
    }

    const amzDate = request.headers['x-amz-date'] as string;
    const signedAt = parseAmzDate(amzDate);
    if (Number.isNaN(signedAt)) throw incomplete('X-Amz-Date must be yyyymmddThhmmssZ');
    const current = now();
    if (Math.abs(current - signedAt) > MAX_SKEW_MS) {
      const nowText = new Date(current).toISOString().replace(/[-:]|\.\d{3}/g, '');
      throw new AirlockErrorSigned(
        ErrorCodes.REQUEST_EXPIRED,
        `Signature expired: ${amzDate} is not within 5 minutes of ${nowText} (the client clock must be in sync)`,
      );
    }
    if (amzDate.slice(0, 8) !== auth.date) {
      throw new AirlockErrorSigned(ErrorCodes.REQUEST_EXPIRED, `Credential date ${auth.date} does not match X-Amz-Date ${amzDate}`);
    }

    const bodyHash = sha256Hex(request.body);
    const claimedHash = request.headers['x-amz-content-sha256'];
    if (claimedHash !== undefined) {
      if (claimedHash === 'UNSIGNED-PAYLOAD' || claimedHash.startsWith('STREAMING-')) {
        throw incomplete('unsigned and streaming payloads are not accepted: sign the payload');
      }
      if (claimedHash !== bodyHash) {
        throw new AirlockErrorSigned(ErrorCodes.SIGNATURE_MISMATCH, 'The provided x-amz-content-sha256 does not match the request body');
      }
    }

    const values = auth.signedHeaders.map((n) => canonicalHeaderValue(request.headers[n] as string));
    const canonical = canonicalRequest(request.method.toUpperCase(), canonicalPath(request.path), canonicalQuery(request.query), auth.signedHeaders, values, bodyHash);
    const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
    const toSign = stringToSign(amzDate, scope, canonical);

    const { grant, key, unknown } = signingKeyOrDecoy(options.grants, auth);
    const expected = createHmac('sha256', key).update(toSign).digest();
    const provided = Buffer.from(auth.signature, 'hex');
    if (grant === undefined || provided.length !== expected.length || !timingSafeEqual(provided, expected)) {
      // An unknown key id reads exactly like a wrong secret (the audit keeps the real code).
      throw new AirlockErrorSigned(unknown ?? ErrorCodes.SIGNATURE_MISMATCH, SIGNATURE_MISMATCH_MESSAGE);
    }
    // Checked only after the signature, so a stranger learns nothing about a grant's resource.
    const region = options.regionOf(grant);
    if (auth.region !== region) {
      throw new AirlockErrorSigned(
        ErrorCodes.REQUEST_EXPIRED,
        `Credential should be scoped to a valid region: this grant's resource is in '${region}', the request is signed for '${auth.region}'`,
      );
    }
    const active = options.grants.requireActive(grant.id);
    return { grant: active, region: auth.region, service: auth.service, accessKeyId: auth.accessKeyId };
  };
}

const SIGNATURE_MISMATCH_MESSAGE = 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.';
const DECOY_KEY = randomBytes(32);

/**
 * The grant's signing key, or (for a key id no grant has) a random key and no grant: the
 * signature check then runs and fails the same way, so an unknown id cannot be told apart
 * from a wrong secret, by its answer or by its time.
 */
function signingKeyOrDecoy<Scope>(
  grants: GrantAuthenticator<Scope>,
  auth: ParsedAuthorization,
): { grant: Grant<Scope> | undefined; key: Buffer; unknown?: typeof ErrorCodes.GRANT_UNKNOWN | typeof ErrorCodes.WRONG_RESOURCE } {
  try {
    return grants.sigv4SigningKey(auth.accessKeyId, auth.date, auth.region, auth.service);
  } catch (e) {
    // The code stays for the audit record; the client sees a signature mismatch.
    if (isAirlockError(e, ErrorCodes.GRANT_UNKNOWN)) return { grant: undefined, key: DECOY_KEY, unknown: ErrorCodes.GRANT_UNKNOWN };
    if (isAirlockError(e, ErrorCodes.WRONG_RESOURCE)) return { grant: undefined, key: DECOY_KEY, unknown: ErrorCodes.WRONG_RESOURCE };
    throw e;
  }
}

/** Signature-family failures answer `InvalidSignatureException`, as AWS does. */
class AirlockErrorSigned extends AwsWireError {
  constructor(code: typeof ErrorCodes.REQUEST_EXPIRED | typeof ErrorCodes.SIGNATURE_MISMATCH | typeof ErrorCodes.GRANT_UNKNOWN | typeof ErrorCodes.WRONG_RESOURCE, message: string) {
    super(code, message, 'InvalidSignatureException');
  }
}

class AirlockTooLarge extends AwsWireError {
  constructor(limit: number) {
    super(ErrorCodes.TOO_LARGE, `Request body is larger than ${limit} bytes`, 'RequestEntityTooLarge');
  }
}
