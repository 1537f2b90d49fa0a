/**
 * CPU per audit record of the pipeline alone (no sockets, no sinks): the pg hot path's
 * two records per statement (`pg.query` with its SQL, `pg.result` with rows/ms), eight
 * statements per event-loop turn as eight busy sessions give, awaiting `spooled` each turn.
 * Prints µs of process CPU (user + system) per record, so two builds of core/audit can be
 * compared on a loaded machine where wall-clock throughput is noise.
 *
 *   node --import tsx bench/micro/audit-append.ts [buffered|strict] [records]
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AuditPipeline } from '../../core/audit/pipeline.ts';

const durability = (process.argv[2] ?? 'buffered') as 'buffered' | 'strict';
const total = Number(process.argv[3] ?? 200_000);
const dir = mkdtempSync(join(tmpdir(), 'airlock-micro-'));
const { privateKey } = generateKeyPairSync('ed25519');
const p = await AuditPipeline.open({ dataDir: dir, durability, gatewayId: 'micro', signingKey: { privateKey, kid: 'k' }, log: pino({ level: 'silent' }) });
const grant = { agent: 'local:bench', grant: 'AGBENCH0000000000001', resource: 'bench', task: 'benchmark: pgbench through airlock' };
const sql = 'SELECT abalance FROM pgbench_accounts WHERE aid = 4711;';

async function turn(i: number): Promise<void> {
  let last: Promise<void> | undefined;
  for (let s = 0; s < 8; s++) {
    const q = p.append({ type: 'pg.query', ...grant, session: `s_${s}`, data: { sql }, outcome: 'ok' });
    p.append({ type: 'pg.result', ...grant, session: `s_${s}`, data: { query: q.seq, rows: 1, ms: 0.123 + (i % 7) / 1000, commands: ['SELECT 1'] }, outcome: 'ok' });
    last = q.spooled;
  }
  await last;
}

for (let i = 0; i < 2000; i++) await turn(i); // warm-up
const c0 = process.cpuUsage();
const t0 = performance.now();
const turns = Math.ceil(total / 16);
for (let i = 0; i < turns; i++) await turn(i);
const cpu = process.cpuUsage(c0);
const wall = performance.now() - t0;
const records = turns * 16;
process.stdout.write(JSON.stringify({ durability, records, cpuUsPerRecord: Math.round(((cpu.user + cpu.system) / records) * 100) / 100, wallUsPerRecord: Math.round(((wall * 1000) / records) * 100) / 100 }) + '\n');
await p.close();
rmSync(dir, { recursive: true, force: true });
