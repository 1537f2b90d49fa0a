/**
 * A gateway that cannot start (a listener's port is taken) fails with the reason, leaves
 * nothing half-started, and the same dataDir starts cleanly afterwards with its audit
 * chain intact.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway } from '../harness/gateway.ts';
import { verifyAuditFiles } from '../../core/audit/verify.ts';
import { loadOrCreateGatewayIdentity } from '../../core/identity/gateway-key.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'airlock-startfail-'));
let blocker: Server | undefined;
after(() => {
  blocker?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const config = (pgListen: string) => ({
  gateway: { postgres: { listen: pgListen, tls: 'disable' } },
  resources: {
    reporting: { type: 'postgres', host: '127.0.0.1', port: 5432, database: 'reporting', tls: 'disable', auth: { type: 'password', passwordEnv: 'AIRLOCK_TEST_PW' }, access: { read: { user: 'agent_ro' } } },
  },
});

test('a taken port fails the start cleanly; the same dataDir then starts and its chain verifies', async () => {
  blocker = createServer();
  await new Promise<void>((r) => blocker!.listen(0, '127.0.0.1', r));
  const taken = (blocker.address() as AddressInfo).port;
  await assert.rejects(
    startTestGateway({ dataDir, config: config(`127.0.0.1:${taken}`), env: { AIRLOCK_TEST_PW: 'x' } }),
    (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE',
  );
  const gw = await startTestGateway({ dataDir, config: config('127.0.0.1:0'), env: { AIRLOCK_TEST_PW: 'x' } });
  try {
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200);
    const started = gw.auditRecords().filter((r) => r.type === 'gateway.started');
    assert.equal(started.length, 2, 'the failed start and the good one are both in one chain');
  } finally {
    await gw.close();
  }
  const { key } = await loadOrCreateGatewayIdentity(dataDir);
  const files = readdirSync(join(dataDir, 'spool')).filter((f) => f.endsWith('.jsonl')).map((f) => join(dataDir, 'spool', f));
  const result = await verifyAuditFiles(files, { publicKeys: [key.publicJwk] });
  assert.equal(result.ok, true, JSON.stringify(result));
});
