/**
 * File sink: the conformance suite (with rotation on), plus what is specific to files:
 * exact lines, idempotence across a restart, a torn tail cut on start, rotation names,
 * a crash between rotation and the next write, and `airlock audit verify` on its output.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import fileSink, { rotatedName } from '../../audit-sinks/file/index.ts';
import { HashChain } from '../../core/audit/chain.ts';
import { GENESIS_HASH } from '../../core/audit/canonical.ts';
import { verifyAuditFiles } from '../../core/audit/verify.ts';
import { runAuditVerify } from '../../core/cli/audit-verify.ts';
import type { AuditRecord, AuditSink, SinkBatch, SinkContext } from '../../core/plugin.ts';
import { appendMany, makeKey, openPipeline, silentLog, spoolRecords, TempDirs } from '../audit/helpers.ts';
import { runSinkConformance } from './conformance.ts';

const temp = new TempDirs();
after(() => temp.cleanup());

function context(dataDir = '/nonexistent'): SinkContext {
  return {
    gatewayId: 'gw-test',
    dataDir,
    aws: {
      region: 'us-east-1',
      endpoint: () => {
        throw new Error('the file sink needs no AWS');
      },
      credentials: async () => {
        throw new Error('the file sink needs no AWS');
      },
    },
    log: silentLog,
  };
}

/** Every file the sink wrote for `path`: rotated ones (by first seq) then the current one. */
async function auditFiles(path: string): Promise<string[]> {
  const dir = join(path, '..');
  const rotated = (await readdir(dir)).filter((n) => /^audit\.\d{12}\.jsonl$/.test(n)).sort().map((n) => join(dir, n));
  return [...rotated, path];
}

async function linesOf(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) out.push(...(await readFile(p, 'utf8')).split('\n').filter((l) => l !== ''));
  return out;
}

function createFileSink(path: string, maxBytes?: number): Promise<AuditSink> {
  const config = fileSink.schema.parse({ type: 'file', path, ...(maxBytes ? { maxBytes } : {}) });
  return fileSink.create(config, context());
}

/** Real chained records and their lines, without a pipeline. */
function chainBatch(chain: HashChain, n: number): SinkBatch {
  const records: AuditRecord[] = [];
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const { record, line } = chain.next({ type: 'pg.query', data: { sql: `select ${chain.lastSeq}` }, outcome: 'ok' });
    records.push(record);
    lines.push(line);
  }
  return { records, lines };
}

function slice(batch: SinkBatch, from: number, to: number): SinkBatch {
  return { records: batch.records.slice(from, to), lines: batch.lines.slice(from, to) };
}

runSinkConformance('file', async () => {
  const dir = await temp.make('airlock-filesink-');
  const path = join(dir, 'audit.jsonl');
  const sink = await createFileSink(path, 16 * 1024);
  return {
    sink,
    readBack: async () => (await linesOf(await auditFiles(path))).map((l) => JSON.parse(l) as AuditRecord),
    cleanup: async () => {},
  };
});

describe('file sink', () => {
  it('validates its config strictly and names its cursor by absolute path', () => {
    assert.throws(() => fileSink.schema.parse({ type: 'file', path: 'a.jsonl', colour: 'red' }));
    assert.throws(() => fileSink.schema.parse({ type: 'file' }));
    const config = fileSink.schema.parse({ type: 'file', path: 'logs/audit.jsonl' });
    assert.equal(fileSink.cursorId(config), `file:${resolve('logs/audit.jsonl')}`);
  });

  it('writes the exact spool lines, and its output passes airlock audit verify', async () => {
    const dataDir = await temp.make();
    const key = makeKey();
    const path = join(dataDir, 'audit', 'audit.jsonl');
    const p = await openPipeline(dataDir, key, { checkpointEvery: 40 });
    p.attachSink(fileSink.cursorId({ type: 'file', path } as never), await createFileSink(path), 500);
    await appendMany(p, 100);
    await p.close();
    const spool = await spoolRecords(dataDir);
    const lines = await linesOf([path]);
    assert.deepEqual(lines, spool.map((r) => JSON.stringify(r)));
    const keyFile = join(dataDir, 'pub.jwk');
    await writeFile(keyFile, JSON.stringify(key.publicJwk));
    const out: string[] = [];
    assert.equal(await runAuditVerify([path, '--key', keyFile], (l) => out.push(l), () => {}), 0);
    assert.deepEqual(out, [`ok: ${spool.length} records, seq 1..${spool.length}, 3 checkpoints verified`]);
  });

  it('skips seqs it already holds when a batch comes again after a restart', async () => {
    const dir = await temp.make();
    const path = join(dir, 'audit.jsonl');
    const chain = new HashChain(0, GENESIS_HASH);
    const all = chainBatch(chain, 15);
    let sink = await createFileSink(path);
    await sink.deliver(slice(all, 0, 10));
    await sink.close?.();
    sink = await createFileSink(path);
    await sink.deliver(slice(all, 4, 15));
    await sink.deliver(slice(all, 12, 15));
    await sink.close?.();
    assert.deepEqual(await linesOf([path]), all.lines);
  });

  it('cuts a torn last line on start and continues cleanly', async () => {
    const dir = await temp.make();
    const path = join(dir, 'audit.jsonl');
    const chain = new HashChain(0, GENESIS_HASH);
    const all = chainBatch(chain, 8);
    let sink = await createFileSink(path);
    await sink.deliver(slice(all, 0, 5));
    await sink.close?.();
    await appendFile(path, all.lines[5]!.slice(0, 40)); // crash in the middle of seq 6
    sink = await createFileSink(path);
    await sink.deliver(slice(all, 5, 8));
    await sink.close?.();
    assert.deepEqual(await linesOf([path]), all.lines);
  });

  it('rotates to audit.<first seq>.jsonl and the set verifies', async () => {
    const dataDir = await temp.make();
    const key = makeKey();
    const path = join(dataDir, 'out', 'audit.jsonl');
    const p = await openPipeline(dataDir, key, { checkpointEvery: 100 });
    p.attachSink('file', await createFileSink(path, 8 * 1024), 20);
    await appendMany(p, 300);
    await p.close();
    const files = await auditFiles(path);
    assert.equal(files.length > 3, true);
    for (const f of files.slice(0, -1)) {
      const first = (JSON.parse((await linesOf([f]))[0]!) as AuditRecord).seq;
      assert.equal(f, rotatedName(path, first));
    }
    const v = await verifyAuditFiles([...files].reverse(), { publicKeys: [key.publicJwk] });
    assert.equal(v.failure, undefined);
    assert.equal(v.records, (await spoolRecords(dataDir)).length);
  });

  it('learns its last seq from the newest rotated file when the current one is gone', async () => {
    const dir = await temp.make();
    const path = join(dir, 'audit.jsonl');
    const chain = new HashChain(0, GENESIS_HASH);
    const all = chainBatch(chain, 12);
    let sink = await createFileSink(path);
    await sink.deliver(slice(all, 0, 6));
    await sink.close?.();
    await rename(path, rotatedName(path, 1)); // crash right after rotating
    sink = await createFileSink(path);
    await sink.deliver(slice(all, 3, 12));
    await sink.close?.();
    assert.deepEqual(await linesOf([rotatedName(path, 1), path]), all.lines);
  });

  it('names a rotated file without a .jsonl ending by appending the seq', () => {
    assert.equal(rotatedName('/var/log/audit.jsonl', 42), '/var/log/audit.000000000042.jsonl');
    assert.equal(rotatedName('/var/log/audit.log', 42), '/var/log/audit.log.000000000042');
  });
});
