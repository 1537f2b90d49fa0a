/**
 * CPU per audit record of the pipeline alone (no sockets, no sinks): the pg hot path's
 * records, eight statements per event-loop turn as eight busy sessions give, awaiting
 * `spooled` each turn. `folded` (the default, what airlock writes since December 2026): one
 * `pg.query` per statement carrying the previous statement's outcome in `done`; `two`: the
 * earlier shape, `pg.query` with its SQL and a `pg.result` with rows/ms.
 * Prints µs of process CPU (user + system) per record and per statement, so two builds of
 * core/audit can be compared on a loaded machine where wall-clock throughput is noise.
 *
 *   node --import tsx bench/micro/audit-append.ts [buffered|strict] [statements] [folded|two]
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AuditPipeline } from '../../core/audit/pipeline.ts';

const durability = (process.argv[2] ?? 'buffered') as 'buffered' | 'strict';
const total = Number(process.argv[3] ?? 200_000);
const shape = (process.argv[4] ?? 'folded') as 'folded' | 'two';
const dir = mkdtempSync(join(tmpdir(), 'airlock-micro-'));
const { privateKey } = generateKeyPairSync('ed25519');
const p = await AuditPipeline.open({ dataDir: dir, durability, gatewayId: 'micro', signingKey: { privateKey, kid: 'k' }, log: pino({ level: 'silent' }) });
const grant = { agent: 'local:bench', grant: 'AGBENCH0000000000001', resource: 'bench', task: 'benchmark: pgbench through airlock' };
const sql = 'SELECT abalance FROM pgbench_accounts WHERE aid = 4711;';

const previous: number[] = new Array<number>(8).fill(0);
let records = 0;

async function turn(i: number): Promise<void> {
  let last: Promise<void> | undefined;
  for (let s = 0; s < 8; s++) {
    const outcome = { query: previous[s]!, rows: 1, ms: 0.123 + (i % 7) / 1000, commands: ['SELECT'] };
    if (shape === 'folded') {
      const q = p.append({ type: 'pg.query', ...grant, session: `s_${s}`, data: { sql, done: [{ ...outcome, outcome: 'ok' }] }, outcome: 'ok' });
      previous[s] = q.seq;
      last = q.spooled;
      records++;
    } else {
      const q = p.append({ type: 'pg.query', ...grant, session: `s_${s}`, data: { sql }, outcome: 'ok' });
      p.append({ type: 'pg.result', ...grant, session: `s_${s}`, data: { ...outcome, query: q.seq }, outcome: 'ok' });
      last = q.spooled;
      records += 2;
    }
  }
  await last;
}

for (let i = 0; i < 2000; i++) await turn(i); // warm-up
records = 0;
const c0 = process.cpuUsage();
const t0 = performance.now();
const turns = Math.ceil(total / 8);
for (let i = 0; i < turns; i++) await turn(i);
const cpu = process.cpuUsage(c0);
const wall = performance.now() - t0;
const statements = turns * 8;
const us = (v: number) => Math.round(v * 100) / 100;
process.stdout.write(
  JSON.stringify({ durability, shape, statements, records, cpuUsPerRecord: us((cpu.user + cpu.system) / records), cpuUsPerStatement: us((cpu.user + cpu.system) / statements), wallUsPerStatement: us((wall * 1000) / statements) }) + '\n',
);
await p.close();
rmSync(dir, { recursive: true, force: true });
