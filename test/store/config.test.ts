/** The `store` config key: file by default, postgres with its defaults, strict keys, the URL from the environment. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../core/config/load.ts';
import { createStore } from '../../core/store/create.ts';

const none = { plugins: [], sinks: [] };

test('no store key means the file store', () => {
  assert.deepEqual(validateConfig({}, 'cfg', none).store, { type: 'file' });
});

test('a postgres store gets maxStaleness 15s and schema airlock by default; its URL comes from the named variable', () => {
  const cfg = validateConfig({ store: { type: 'postgres', urlEnv: 'AIRLOCK_STORE_URL' } }, 'cfg', { ...none, env: { AIRLOCK_STORE_URL: 'postgres://u:p@127.0.0.1:5/db' } });
  assert.deepEqual(cfg.store, { type: 'postgres', urlEnv: 'AIRLOCK_STORE_URL', maxStaleness: '15s', schema: 'airlock' });
  assert.throws(() => validateConfig({ store: { type: 'postgres', urlEnv: 'AIRLOCK_STORE_URL' } }, 'cfg', { ...none, env: {} }), /store\.urlEnv: environment variable AIRLOCK_STORE_URL is not set/);
});

test('bad store settings are refused with the key named', () => {
  const env = { ...none, env: { U: 'postgres://x@y/z' } };
  assert.throws(() => validateConfig({ store: { type: 'postgres', urlEnv: 'U', url: 'postgres://inline' } }, 'cfg', env), /store: unknown key "url"/);
  assert.throws(() => validateConfig({ store: { type: 'postgres', urlEnv: 'U', maxStaleness: 'soon' } }, 'cfg', env), /store\.maxStaleness: expected a duration/);
  assert.throws(() => validateConfig({ store: { type: 'postgres', urlEnv: 'U', schema: 'Bad-Name' } }, 'cfg', env), /store\.schema: lower-case/);
  assert.throws(() => validateConfig({ store: { type: 'etcd' } }, 'cfg', env), /store\.type/);
});

test('createStore builds the configured store with its staleness bound', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-store-cfg-'));
  try {
    const file = createStore({ type: 'file' }, { dataDir: dir, replicaId: 'gw-1' });
    assert.equal(file.store.type, 'file');
    assert.equal(file.maxStalenessMs, Number.POSITIVE_INFINITY);
    const pg = createStore({ type: 'postgres', urlEnv: 'STORE_URL', maxStaleness: '5s', schema: 'airlock' }, { dataDir: dir, replicaId: 'gw-1', env: { STORE_URL: 'postgres://u:p@127.0.0.1:1/db' } });
    assert.equal(pg.store.type, 'postgres');
    assert.equal(pg.maxStalenessMs, 5_000);
    await pg.store.close();
    assert.throws(() => createStore({ type: 'postgres', urlEnv: 'MISSING', maxStaleness: '15s', schema: 'airlock' }, { dataDir: dir, replicaId: 'gw-1', env: {} }), /MISSING \(store\.urlEnv\) is not set/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
