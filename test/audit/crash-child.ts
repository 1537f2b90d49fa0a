/**
 * Child process for crash.test.ts: opens a strict pipeline on argv[2] and appends records
 * forever, a few per event-loop turn, printing each seq on stdout once its `durable`
 * resolved. The parent kills it with SIGKILL mid-stream.
 */
import { createPrivateKey } from 'node:crypto';
import { pino } from 'pino';
import { AuditPipeline } from '../../core/audit/pipeline.ts';

const dataDir = process.argv[2];
const pem = process.env.AUDIT_TEST_KEY_PEM;
if (!dataDir || !pem) {
  process.stderr.write('usage: crash-child.ts DATA_DIR (key PEM in AUDIT_TEST_KEY_PEM)\n');
  process.exit(2);
}
const pipeline = await AuditPipeline.open({
  dataDir,
  durability: 'strict',
  gatewayId: 'gw-crash',
  checkpointEvery: 97,
  signingKey: { privateKey: createPrivateKey(pem), kid: 'crash-key' },
  log: pino({ level: 'silent' }),
});

let n = 0;
function burst(): void {
  const count = 1 + (n % 13);
  const seqs: number[] = [];
  let last: Promise<void> | undefined;
  for (let i = 0; i < count; i++) {
    const r = pipeline.append({ type: 'pg.query', session: 's_crash', data: { sql: `select ${n}`, pad: 'x'.repeat(n % 300) }, outcome: 'ok' });
    seqs.push(r.seq);
    last = r.durable;
    n++;
  }
  // Records of one turn share one write, so the last durable covers them all.
  void last!.then(
    () => process.stdout.write(seqs.join('\n') + '\n'),
    (e: unknown) => {
      process.stderr.write(`append failed: ${(e as Error).message}\n`);
      process.exit(1);
    },
  );
  setImmediate(burst);
}
burst();
