/**
 * Child process for stdout.test.ts: a strict pipeline on argv[2] with the real stdout sink
 * (created through its definition, writing to this process's stdout) and 200 records.
 */
import { createPrivateKey } from 'node:crypto';
import { pino } from 'pino';
import { AuditPipeline } from '../../core/audit/pipeline.ts';
import stdoutSink from '../../audit-sinks/stdout/index.ts';

const dataDir = process.argv[2]!;
const pipeline = await AuditPipeline.open({
  dataDir,
  durability: 'strict',
  gatewayId: 'gw-stdout',
  checkpointEvery: 60,
  signingKey: { privateKey: createPrivateKey(process.env.AUDIT_TEST_KEY_PEM!), kid: 'stdout-key' },
  // Logs go to stderr so stdout carries audit lines only.
  log: pino({ level: 'warn' }, pino.destination(2)),
});
const config = stdoutSink.schema.parse({ type: 'stdout' });
const sink = await stdoutSink.create(config, {
  gatewayId: 'gw-stdout',
  dataDir,
  aws: { region: 'us-east-1', endpoint: () => '', credentials: async () => ({ accessKeyId: '', secretAccessKey: '' }) },
  log: pino({ level: 'silent' }),
});
pipeline.attachSink(stdoutSink.cursorId(config), sink, stdoutSink.maxBatch);
for (let i = 0; i < 200; i++) {
  await pipeline.append({ type: 'aws.request', data: { operation: 'GetItem', i }, outcome: 'ok' }).durable;
}
await pipeline.close();
