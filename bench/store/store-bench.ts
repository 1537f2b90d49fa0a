/**
 * `npx tsx bench/store/store-bench.ts [--grants N]`: the shared store alone, before it is
 * wired into the gateway. Measures grant creation (one at a time and 16 concurrent) on the
 * file store and on PostgreSQL (a throwaway local cluster, fsync off like the test
 * harness), and change propagation between two PostgreSQL store instances: from
 * `transition(revoke)` called on one to the change delivered on the other (NOTIFY path;
 * the other's poll is set to a minute so it cannot help).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSharedStore } from '../../core/store/file/store.ts';
import { PostgresSharedStore } from '../../core/store/postgres/store.ts';
import type { SharedStore, StoreChange } from '../../core/store/types.ts';
import { startPostgresCluster } from '../../test/harness/postgres-cluster.ts';
import { makeGrant } from '../../test/store/fixtures.ts';

const N = Number(process.argv[process.argv.indexOf('--grants') + 1]) || 300;

function summary(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(2);
  return `p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${s.at(-1)!.toFixed(2)} ms (n=${s.length})`;
}

async function creation(store: SharedStore): Promise<{ serial: string; concurrentPerSec: number }> {
  const serial: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    await store.createGrant(makeGrant());
    serial.push(performance.now() - t0);
  }
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next++ < N) await store.createGrant(makeGrant());
  }));
  return { serial: summary(serial), concurrentPerSec: Math.round(N / ((performance.now() - t0) / 1000)) };
}

async function propagation(a: PostgresSharedStore, waiters: Map<string, () => void>): Promise<string> {
  const ms: number[] = [];
  for (let i = 0; i < N; i++) {
    const g = makeGrant();
    await a.createGrant(g);
    const seen = new Promise<void>((resolve) => waiters.set(g.id, resolve));
    const t0 = performance.now();
    await a.transition(g.id, { kind: 'revoke', by: 'bench', at: Date.now() });
    await seen;
    ms.push(performance.now() - t0);
  }
  return summary(ms);
}

const dir = mkdtempSync(join(tmpdir(), 'airlock-store-bench-'));
const cluster = await startPostgresCluster();
const url = `${cluster.connectionString(cluster.superuser, cluster.superuserPassword)}?sslmode=disable`;
const file = new FileSharedStore(dir, 'bench');
const a = new PostgresSharedStore({ url, replicaId: 'A' });
const b = new PostgresSharedStore({ url, replicaId: 'B', pollMs: 60_000 });
const waiters = new Map<string, () => void>();
try {
  await file.open();
  await a.open();
  await b.open({
    onChange: (c: StoreChange) => {
      if (c.kind === 'grant' && c.change === 'revoke') waiters.get(c.grant.id)?.();
    },
  });
  const f = await creation(file);
  const p = await creation(a);
  console.log(`createGrant, file store:  ${f.serial}; 16 concurrent: ${f.concurrentPerSec}/s`);
  console.log(`createGrant, PostgreSQL:  ${p.serial}; 16 concurrent: ${p.concurrentPerSec}/s`);
  console.log(`revoke on A → delivered on B (PostgreSQL, NOTIFY): ${await propagation(a, waiters)}`);
} finally {
  await file.close();
  await a.close();
  await b.close();
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
}
