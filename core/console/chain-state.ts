/**
 * The chain's verification state as the console shows it, kept up to date record by
 * record (each record's own hash, the `prev` link to the one before, and every
 * checkpoint's signature), so a page never re-verifies the whole spool.
 */
import type { JWK } from 'jose';
import type { AuditRecord } from '../plugin.ts';
import { GENESIS_HASH, recordHash } from '../audit/canonical.ts';
import { verifyCheckpoint } from '../audit/checkpoint.ts';

export interface ChainStatus {
  /** Records checked so far (the spool's oldest record onward). */
  records: number;
  firstSeq: number | undefined;
  lastSeq: number | undefined;
  /** True when the first checked record is seq 1 (nothing before it can be missing). */
  fromGenesis: boolean;
  checkpoints: number;
  lastCheckpointSeq: number | undefined;
  lastCheckpointTs: string | undefined;
  /** Records after the last verified checkpoint. */
  unsignedTail: number;
  /** The first problem found; checking stops there (later records are still indexed). */
  failure: { seq: number; reason: string } | undefined;
}

export class ChainState {
  private prev: AuditRecord | undefined;
  private readonly keys: ReadonlyMap<string, JWK>;
  readonly status: ChainStatus = {
    records: 0,
    firstSeq: undefined,
    lastSeq: undefined,
    fromGenesis: false,
    checkpoints: 0,
    lastCheckpointSeq: undefined,
    lastCheckpointTs: undefined,
    unsignedTail: 0,
    failure: undefined,
  };

  constructor(
    publicKeys: readonly JWK[],
    private readonly gatewayId: string,
  ) {
    this.keys = new Map(publicKeys.filter((k) => typeof k.kid === 'string').map((k) => [k.kid!, k]));
  }

  /** Records from the spool deleted before the console saw them: restart the chain there. */
  gap(): void {
    this.prev = undefined;
  }

  async check(r: AuditRecord): Promise<void> {
    const s = this.status;
    if (s.failure) return;
    const reason = await this.problem(r);
    if (reason) {
      s.failure = { seq: r.seq, reason };
      return;
    }
    if (s.firstSeq === undefined) {
      s.firstSeq = r.seq;
      s.fromGenesis = r.seq === 1;
    }
    s.records++;
    s.lastSeq = r.seq;
    if (r.type === 'checkpoint') {
      s.checkpoints++;
      s.lastCheckpointSeq = r.seq;
      s.lastCheckpointTs = r.ts;
      s.unsignedTail = 0;
    } else {
      s.unsignedTail++;
    }
    this.prev = r;
  }

  private async problem(r: AuditRecord): Promise<string | undefined> {
    if (recordHash(r) !== r.hash) return 'record hash does not match its content';
    if (this.prev) {
      if (r.seq !== this.prev.seq + 1) return `seq gap: ${this.prev.seq} is followed by ${r.seq}`;
      if (r.prev !== this.prev.hash) return 'prev does not match the hash of the record before';
    } else if (r.seq === 1 && r.prev !== GENESIS_HASH) {
      return 'the first record does not start from the genesis hash';
    }
    if (r.type === 'checkpoint') {
      const check = await verifyCheckpoint(r.data?.jws, { seq: r.seq, prev: r.prev }, this.keys, this.gatewayId);
      if (!check.ok) return check.reason;
    }
    return undefined;
  }
}
