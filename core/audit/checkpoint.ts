/**
 * Signed checkpoints: a compact JWS (alg EdDSA, Ed25519) over
 * `{ gatewayId, seq, prev, kid, checkpointIntervalMs }`, stored as `data.jws` of a `checkpoint` record at `seq`
 * whose `prev` is `prev`. Signing it ties every record up to that point to the gateway key.
 *
 * Signing is synchronous (node:crypto) rather than jose's async CompactSign because the
 * checkpoint takes a seq in the chain and the next record's `prev` is its hash: an await
 * here would stall seq allocation. The output is a standard compact JWS; verification
 * uses jose.
 */
import { sign as cryptoSign, type KeyObject } from 'node:crypto';
import { compactVerify, importJWK, type JWK } from 'jose';

export interface CheckpointPayload {
  gatewayId: string;
  seq: number;
  prev: string;
  kid: string;
  /**
   * The gateway's promise: no stretch of unsigned records spans more record time than
   * this. Signed, so a verifier can hold the log to it (absent in older checkpoints).
   */
  checkpointIntervalMs?: number;
}

export interface CheckpointSigner {
  readonly kid: string;
  sign(payload: CheckpointPayload): string;
  /** The same JWS form over any JSON object (the live head of `GET /v1/audit/head`). */
  signJson(payload: object): string;
}

export function checkpointSigner(key: { privateKey: KeyObject; kid: string }): CheckpointSigner {
  const { privateKey } = key;
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') {
    throw new TypeError('audit signing key must be an Ed25519 private key');
  }
  const header = b64url(JSON.stringify({ alg: 'EdDSA', kid: key.kid }));
  const signJson = (payload: object): string => {
    const signingInput = header + '.' + b64url(JSON.stringify(payload));
    const signature = cryptoSign(null, Buffer.from(signingInput, 'ascii'), privateKey);
    return signingInput + '.' + signature.toString('base64url');
  };
  return { kid: key.kid, sign: signJson, signJson };
}

function b64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

export type CheckpointCheck =
  | { ok: true; payload: CheckpointPayload }
  | { ok: false; reason: string };

/** Verifies a checkpoint JWS and that it describes the record it sits in. */
export async function verifyCheckpoint(
  jws: unknown,
  at: { seq: number; prev: string },
  keys: ReadonlyMap<string, JWK>,
  expectGatewayId?: string,
): Promise<CheckpointCheck> {
  if (typeof jws !== 'string') return { ok: false, reason: 'checkpoint record has no data.jws string' };
  const parts = jws.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'checkpoint JWS is not a compact JWS' };
  let header: { alg?: unknown; kid?: unknown };
  try {
    header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as typeof header;
  } catch {
    return { ok: false, reason: 'checkpoint JWS header is not JSON' };
  }
  if (header.alg !== 'EdDSA') return { ok: false, reason: `checkpoint JWS alg ${String(header.alg)} is not EdDSA` };
  if (typeof header.kid !== 'string') return { ok: false, reason: 'checkpoint JWS has no kid' };
  const jwk = keys.get(header.kid);
  if (!jwk) return { ok: false, reason: `checkpoint signed with unknown key id ${JSON.stringify(header.kid)}` };
  let payloadBytes: Uint8Array;
  try {
    const key = await importJWK(jwk, 'EdDSA');
    ({ payload: payloadBytes } = await compactVerify(jws, key, { algorithms: ['EdDSA'] }));
  } catch (e) {
    return { ok: false, reason: `checkpoint signature invalid (${(e as Error).message})` };
  }
  let payload: Partial<CheckpointPayload>;
  try {
    payload = JSON.parse(Buffer.from(payloadBytes).toString('utf8')) as Partial<CheckpointPayload>;
  } catch {
    return { ok: false, reason: 'checkpoint payload is not JSON' };
  }
  if (payload.seq !== at.seq) return { ok: false, reason: `checkpoint payload seq ${String(payload.seq)} does not match its position` };
  if (payload.prev !== at.prev) return { ok: false, reason: 'checkpoint payload prev does not match the previous record' };
  if (payload.kid !== header.kid) return { ok: false, reason: 'checkpoint payload kid differs from its header' };
  if (typeof payload.gatewayId !== 'string') return { ok: false, reason: 'checkpoint payload has no gatewayId' };
  if (expectGatewayId !== undefined && payload.gatewayId !== expectGatewayId) {
    return { ok: false, reason: `checkpoint is from gateway ${JSON.stringify(payload.gatewayId)}` };
  }
  return { ok: true, payload: payload as CheckpointPayload };
}

/** Verifies a compact EdDSA JWS under one of `keys` and returns its JSON payload. */
export async function verifySignedJson(jws: unknown, keys: ReadonlyMap<string, JWK>): Promise<{ ok: true; payload: Record<string, unknown> } | { ok: false; reason: string }> {
  if (typeof jws !== 'string' || jws.split('.').length !== 3) return { ok: false, reason: 'not a compact JWS' };
  let kid: unknown;
  try {
    kid = (JSON.parse(Buffer.from(jws.split('.')[0]!, 'base64url').toString('utf8')) as { kid?: unknown }).kid;
  } catch {
    return { ok: false, reason: 'JWS header is not JSON' };
  }
  const jwk = typeof kid === 'string' ? keys.get(kid) : undefined;
  if (!jwk) return { ok: false, reason: `signed with unknown key id ${JSON.stringify(kid)}` };
  try {
    const { payload } = await compactVerify(jws, await importJWK(jwk, 'EdDSA'), { algorithms: ['EdDSA'] });
    const parsed: unknown = JSON.parse(Buffer.from(payload).toString('utf8'));
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { ok: false, reason: 'JWS payload is not a JSON object' };
    return { ok: true, payload: parsed as Record<string, unknown> };
  } catch (e) {
    return { ok: false, reason: `signature invalid (${(e as Error).message})` };
  }
}
