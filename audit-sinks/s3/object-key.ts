/**
 * Where one batch goes in the bucket. Deterministic in the batch alone, so a retried batch
 * overwrites its own object instead of adding a second copy:
 *   <prefix>YYYY/MM/DD/<gatewayId>/<firstSeq>-<lastSeq>.jsonl.gz
 * The date is the first record's UTC day (records carry ISO-8601 UTC `ts`). Seqs are
 * zero-padded to 16 digits (every safe integer) so a plain listing sorts in seq order.
 */
import type { AuditRecord } from '../../core/plugin.ts';
import { AirlockError } from '../../core/errors.ts';

const SEQ_DIGITS = 16;

/** `''` stays empty; anything else ends in exactly one `/` and never starts with one. */
export function normalizePrefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? '').replace(/^\/+/, '').replace(/\/+$/, '');
  return trimmed === '' ? '' : `${trimmed}/`;
}

export function padSeq(seq: number): string {
  return String(seq).padStart(SEQ_DIGITS, '0');
}

export function objectKey(prefix: string, gatewayId: string, records: readonly AuditRecord[]): string {
  const first = records[0];
  const last = records[records.length - 1];
  if (!first || !last) throw new AirlockError('INTERNAL', 's3 sink: empty batch has no object key');
  const day = /^(\d{4})-(\d{2})-(\d{2})T/.exec(first.ts);
  if (!day) throw new AirlockError('INTERNAL', `s3 sink: record ${first.seq} has a malformed ts`);
  return `${normalizePrefix(prefix)}${day[1]}/${day[2]}/${day[3]}/${gatewayId}/${padSeq(first.seq)}-${padSeq(last.seq)}.jsonl.gz`;
}
