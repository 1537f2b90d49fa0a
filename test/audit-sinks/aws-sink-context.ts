/**
 * Shared by the S3 / CloudWatch sink tests: a SinkContext built by hand (as the gateway
 * builds it: airlock's own keys, `aws.endpoints` pointing at moto) and real hash-chained
 * records from core's HashChain.
 */
import pino from 'pino';
import type { AuditRecord, SinkBatch, SinkContext } from '../../core/plugin.ts';
import { HashChain } from '../../core/audit/chain.ts';
import { GENESIS_HASH } from '../../core/audit/canonical.ts';

export function sinkContext(opts: {
  endpoint: string;
  keys: { accessKeyId: string; secretAccessKey: string };
  gatewayId?: string;
  dataDir?: string;
  region?: string;
}): SinkContext {
  return {
    gatewayId: opts.gatewayId ?? 'gw-test0001',
    dataDir: opts.dataDir ?? '/nonexistent',
    aws: {
      region: opts.region ?? 'us-east-1',
      endpoint: () => opts.endpoint,
      credentials: async () => ({ accessKeyId: opts.keys.accessKeyId, secretAccessKey: opts.keys.secretAccessKey }),
    },
    log: pino({ level: 'silent' }),
  };
}

/** A generator of chained records, as the spool would hand them over. */
export class RecordSource {
  private readonly chain = new HashChain(0, GENESIS_HASH);
  readonly all: AuditRecord[] = [];
  readonly lines: string[] = [];

  next(count: number, opts: { at?: Date; data?: (seq: number) => Record<string, unknown> } = {}): SinkBatch {
    const records: AuditRecord[] = [];
    const lines: string[] = [];
    for (let i = 0; i < count; i++) {
      const seq = this.chain.lastSeq + 1;
      const { record, line } = this.chain.next(
        { type: 'pg.query', agent: 'local:report-bot', grant: 'AGTEST', resource: 'reporting', data: opts.data?.(seq) ?? { sql: `select ${seq}` }, outcome: 'ok' },
        opts.at ?? new Date(),
      );
      records.push(record);
      lines.push(line);
    }
    this.all.push(...records);
    this.lines.push(...lines);
    return { records, lines };
  }
}

export function slice(batch: SinkBatch, start: number, end?: number): SinkBatch {
  return { records: batch.records.slice(start, end), lines: batch.lines.slice(start, end) };
}
