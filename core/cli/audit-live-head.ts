/**
 * `airlock audit verify --gateway URL`: the stored log's end against the live gateway's
 * signed head. A log can verify on its own and still be short (its tail cut before the
 * next checkpoint) or end in a record the gateway never wrote; only the gateway knows.
 */
import type { JWK } from 'jose';
import { verifySignedJson } from '../audit/checkpoint.ts';
import { VerifyInputError, formatMs, type VerifyResult } from '../audit/verify.ts';

export interface LiveHead {
  gatewayId: string;
  seq: number;
  hash: string;
  ts: string;
  at?: { seq: number; hash: string } | undefined;
  checkpoint?: { seq: number; ts: string } | undefined;
}

/** Fetches `GET /v1/audit/head` (asking for the hash at the log's last seq) and checks its signature. */
export async function fetchLiveHead(gateway: string, token: string, logLastSeq: number | undefined, keys: JWK[]): Promise<LiveHead> {
  const url = new URL('/v1/audit/head', gateway);
  if (logLastSeq !== undefined) url.searchParams.set('seq', String(logLastSeq));
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    throw new VerifyInputError(`cannot reach ${url.origin}: ${(e as Error).message}`);
  }
  const text = await res.text();
  if (res.status !== 200) throw new VerifyInputError(`${url.href} answered ${res.status}: ${text.slice(0, 200)}`);
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new VerifyInputError(`${url.href} did not answer JSON`);
  }
  const byKid = new Map<string, JWK>();
  for (const k of keys) if (typeof k.kid === 'string') byKid.set(k.kid, k);
  const signed = await verifySignedJson(body.jws, byKid);
  if (!signed.ok) throw new VerifyInputError(`the gateway's head is not signed by a known key: ${signed.reason}`);
  // Only the signed payload counts; the rest of the body is informative.
  const p = signed.payload;
  if (typeof p.gatewayId !== 'string' || typeof p.seq !== 'number' || typeof p.hash !== 'string' || typeof p.ts !== 'string') {
    throw new VerifyInputError("the gateway's signed head lacks gatewayId, seq, hash or ts");
  }
  const at = p.at as { seq?: unknown; hash?: unknown } | undefined;
  const cp = body.checkpoint as { seq?: unknown; ts?: unknown } | undefined;
  return {
    gatewayId: p.gatewayId,
    seq: p.seq,
    hash: p.hash,
    ts: p.ts,
    at: at && typeof at.seq === 'number' && typeof at.hash === 'string' ? { seq: at.seq, hash: at.hash } : undefined,
    checkpoint: cp && typeof cp.seq === 'number' && typeof cp.ts === 'string' ? { seq: cp.seq, ts: cp.ts } : undefined,
  };
}

export function compareWithLiveHead(r: VerifyResult, live: LiveHead): { ok: boolean; line: string } {
  const last = r.lastSeq ?? 0;
  const where = `live gateway ${live.gatewayId} at seq ${live.seq} (${live.ts})`;
  if (last > live.seq) {
    return { ok: false, line: `MISMATCH: the log ends at seq ${last}, beyond the ${where}: not this gateway's chain, or the gateway lost records` };
  }
  if (last === live.seq) {
    if (r.lastHash !== live.hash) return { ok: false, line: `TAMPERED: seq ${last} differs from the ${where} (the record was rewritten)` };
    return { ok: true, line: `live head: matches ${where}` };
  }
  if (live.at && live.at.seq === last && live.at.hash !== r.lastHash) {
    return { ok: false, line: `TAMPERED: seq ${last} differs from the gateway's own record of it (the record was rewritten); ${where}` };
  }
  const missing = live.seq - last;
  const signedBeyond = live.checkpoint && live.checkpoint.seq > last ? `, including signed checkpoint seq ${live.checkpoint.seq} (${live.checkpoint.ts})` : '';
  const since = r.lastTs !== undefined ? ` since the log's last record at ${r.lastTs}` : '';
  const tail = r.unsignedTailSpanMs !== undefined && r.unsignedTail > 0 ? `; the log's own unsigned tail is ${r.unsignedTail} records over ${formatMs(r.unsignedTailSpanMs)}` : '';
  return {
    ok: false,
    line: `GAP: the log ends at seq ${last}; the ${where} has ${missing} more records (seq ${last + 1}..${live.seq})${since}${signedBeyond}: the log was truncated, or its sink has not delivered them yet${tail}`,
  };
}
