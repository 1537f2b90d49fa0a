/**
 * Three `airlock serve` processes on one PostgreSQL store (SPEC "Shared store and
 * replicas"): shared tokens and grants, revocation and expiry across replicas, a replica
 * killed and back, the store stopped and back. Real psql sessions through the real
 * postgres plugin against a real upstream PostgreSQL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { spawnPsql, collect } from '../postgres/fixture.ts';
import { api, pgEnv, startStack, waitFor, AGENT_NAME, ADMIN, type Replica, type Stack } from './stack.ts';

let stack: Stack;
let A: Replica, B: Replica, C: Replica;
let agent: string;
let admin: string;

async function grantOn(r: Replica, ttl = '5m', access = 'read'): Promise<{ id: string; env: Record<string, string> }> {
  const res = await api(r, 'POST', '/v1/grants', agent, { resource: 'reporting', access, ttl, task: 'replica test' });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const connect = res.body.connect as { env: Record<string, string> };
  return { id: String(res.body.id), env: connect.env };
}

/** A psql session on `r` that has answered one query and is waiting on a long one. */
async function openSession(env: Record<string, string>, r: Replica): Promise<{ child: ChildProcess; done: Promise<{ code: number; stdout: string; stderr: string }> }> {
  const child = spawnPsql(pgEnv(env, r), []);
  const done = collect(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  // psql notices a cut connection while it waits for an answer: keep it waiting.
  child.stdin!.end('select 40 + 2;\nselect pg_sleep(120);\n');
  await waitFor('the first answer', () => (out.includes('42') ? true : undefined), 20_000).catch(async (e: unknown) => {
    child.kill('SIGKILL');
    const r = await done;
    throw new Error(`${String(e)}: ${r.stderr}`);
  });
  return { child, done };
}

/** psql with `sql` on replica `r`, tried until it succeeds (a change may take a moment to reach `r`). */
function psqlSucceeds(what: string, env: Record<string, string>, r: Replica, sql: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return waitFor(what, async () => {
    const res = await collect(spawnPsql(pgEnv(env, r), ['-v', 'ON_ERROR_STOP=1', '-c', sql]));
    return res.code === 0 ? res : undefined;
  });
}

function sleepUndefined(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms));
}

before(async () => {
  stack = await startStack({ maxStaleness: '2s' });
  [A, B, C] = stack.replicas as [Replica, Replica, Replica];
  agent = await stack.token(A, AGENT_NAME);
  admin = await stack.token(C, ADMIN);
});

after(async () => {
  await stack?.close();
});

describe('three replicas on one store', () => {
  test('a token minted with one replica\'s config verifies on the others', async () => {
    for (const r of [A, B, C]) {
      const res = await api(r, 'GET', '/v1/grants', agent);
      assert.equal(res.status, 200, `${r.name}: ${JSON.stringify(res.body)}`);
    }
    assert.equal((await api(A, 'GET', '/v1/sessions', admin)).status, 200, 'an admin token minted via C is accepted on A');
  });

  test('a grant from A works on B', async () => {
    const g = await grantOn(A);
    const res = await psqlSucceeds('psql on B', g.env, B, 'select count(*) from revenue');
    assert.equal(res.stdout.trim(), '50');
  });

  test('a per-grant role made on A serves the grant on B and C; revoked on B, the role is gone for all', async () => {
    const g = await grantOn(A, '5m', 'revenue-only');
    const role = `airlock_${g.id.toLowerCase()}`;
    for (const r of [B, C, A]) {
      const res = await collect(spawnPsql(pgEnv(g.env, r), ['-v', 'ON_ERROR_STOP=1', '-c', 'select current_user, count(*) from revenue']));
      assert.equal(res.code, 0, `${r.name}: ${res.stderr}`);
      assert.equal(res.stdout.trim(), `${role}|50`, `${r.name} logs in as the grant's own role`);
    }
    const other = await collect(spawnPsql(pgEnv(g.env, C), ['-c', 'select count(*) from notes']));
    assert.match(other.stderr, /permission denied for table notes/, 'the role is narrowed to its table on every replica');
    const created = stack.records().filter((r) => r.type === 'pg.role.created' && r.grant === g.id);
    assert.deepEqual(created.map((r) => r.replica), ['a'], 'the role is made once, by the replica that activated the grant');

    assert.equal((await api(B, 'DELETE', `/v1/grants/${g.id}`, admin)).status, 200);
    await waitFor('the role dropped', async () => ((await stack.upstream.sql(`select count(*) from pg_roles where rolname = '${role}'`)).trim() === '0' ? true : undefined));
    const after = await collect(spawnPsql(pgEnv(g.env, C), ['-c', 'select 1']));
    assert.notEqual(after.code, 0);
    assert.match(after.stderr, /revoked/);
  });

  test('a revocation on C cuts a live psql session on B and B says why', async (t) => {
    const g = await grantOn(A);
    const s = await openSession(g.env, B);
    const t0 = Date.now();
    const res = await api(C, 'DELETE', `/v1/grants/${g.id}`, admin);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const ended = await Promise.race([s.done, sleepUndefined(10_000)]);
    if (!ended) s.child.kill('SIGKILL');
    assert.ok(ended, 'the session on B was not cut within 10 s');
    const ms = Date.now() - t0;
    t.diagnostic(`revocation on C reached B's session in ${ms} ms`);
    assert.match(ended.stderr, /revoked/, ended.stderr);
    const onB = await api(B, 'GET', `/v1/grants/${g.id}`, admin);
    assert.equal(onB.body.status, 'revoked');
    const revokedRecords = stack.records().filter((r) => r.type === 'grant.revoked' && r.grant === g.id);
    assert.equal(revokedRecords.length, 1, 'one grant.revoked record, from C');
    assert.equal(revokedRecords[0]!.replica, 'c');
  });

  test('a grant issued on B expires on C', async () => {
    const g = await grantOn(B, '3s');
    const s = await openSession(g.env, C);
    const ended = await Promise.race([s.done, sleepUndefined(15_000)]);
    if (!ended) s.child.kill('SIGKILL');
    assert.ok(ended, 'the session on C outlived its grant');
    assert.match(ended.stderr, /expired/, ended.stderr);
    const records = await waitFor('one grant.expired', () => {
      const found = stack.records().filter((r) => r.type === 'grant.expired' && r.grant === g.id);
      return found.length > 0 ? found : undefined;
    });
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(stack.records().filter((r) => r.type === 'grant.expired' && r.grant === g.id).length, 1, JSON.stringify(records));
  });

  test('after kill -9 of B the others carry on and B rejoins', async () => {
    await B.child.stop('SIGKILL');
    const g = await grantOn(A);
    const res = await collect(spawnPsql(pgEnv(g.env, C), ['-v', 'ON_ERROR_STOP=1', '-c', 'select 1']));
    assert.equal(res.code, 0, res.stderr);
    await stack.restart(B);
    const onB = await collect(spawnPsql(pgEnv(g.env, B), ['-v', 'ON_ERROR_STOP=1', '-c', 'select 2']));
    assert.equal(onB.code, 0, onB.stderr);
    const later = await grantOn(C);
    const r2 = await psqlSucceeds('the new grant on B', later.env, B, 'select 3');
    assert.equal(r2.stdout.trim(), '3');
  });

  test('with the store stopped: 503 for new grants, live sessions closed past maxStaleness, then recovery', async () => {
    const g = await grantOn(A);
    const s = await openSession(g.env, A);
    await stack.store.halt();
    try {
      const refused = await waitFor('a 503', async () => {
        const res = await api(B, 'POST', '/v1/grants', agent, { resource: 'reporting', access: 'read', ttl: '5m', task: 'store down' });
        return res.status === 503 ? res : undefined;
      });
      assert.match(String(refused.body.error), /store/, JSON.stringify(refused.body));
      const health = await fetch(new URL('/healthz', C.url));
      assert.equal(health.status, 503);
      const ended = await Promise.race([s.done, sleepUndefined(20_000)]);
      if (!ended) s.child.kill('SIGKILL');
      assert.ok(ended, 'the live session survived a stale view');
      assert.match(ended.stderr, /cannot confirm the grant is still valid/, ended.stderr);
      const newSession = await collect(spawnPsql(pgEnv(g.env, A), ['-c', 'select 1']));
      assert.notEqual(newSession.code, 0, 'a new session was accepted while the store was down');
    } finally {
      await stack.store.resume();
    }
    await waitFor('healthz 200 on every replica', async () => {
      for (const r of [A, B, C]) if ((await fetch(new URL('/healthz', r.url))).status !== 200) return undefined;
      return true;
    }, 60_000);
    const again = await grantOn(B);
    const res = await collect(spawnPsql(pgEnv(again.env, A), ['-v', 'ON_ERROR_STOP=1', '-c', 'select 4']));
    assert.equal(res.code, 0, res.stderr);
    const old = await collect(spawnPsql(pgEnv(g.env, C), ['-v', 'ON_ERROR_STOP=1', '-c', 'select 5']));
    assert.equal(old.code, 0, `the grant made before the outage works again: ${old.stderr}`);
  });

  test('SIGTERM drains: health 503 and new sessions refused at once, live ones cut after the bound', async () => {
    const g = await grantOn(B);
    const s = await openSession(g.env, A);
    const exited = new Promise<number | null>((resolve) => A.child.proc.once('exit', (code) => resolve(code)));
    A.child.proc.kill('SIGTERM');
    const health = await waitFor('healthz 503 draining', async () => {
      const res = await fetch(new URL('/healthz', A.url)).catch(() => undefined);
      if (!res || res.status !== 503) return undefined;
      return (await res.json()) as { detail?: { draining?: boolean }; draining?: boolean };
    }, 5_000);
    assert.ok(JSON.stringify(health).includes('"draining":true'), JSON.stringify(health));
    const refused = await collect(spawnPsql(pgEnv(g.env, A), ['-c', 'select 1']));
    assert.notEqual(refused.code, 0, 'a new session was accepted while draining');
    assert.match(refused.stderr, /shutting down/, refused.stderr);
    const ended = await Promise.race([s.done, sleepUndefined(15_000)]);
    if (!ended) s.child.kill('SIGKILL');
    assert.ok(ended, 'the live session outlived the drain bound');
    assert.match(ended.stderr, /shutting down/, ended.stderr);
    assert.equal(await exited, 0);
    // The grant lives on: the other replicas still serve it.
    const onC = await collect(spawnPsql(pgEnv(g.env, C), ['-v', 'ON_ERROR_STOP=1', '-c', 'select 6']));
    assert.equal(onC.code, 0, onC.stderr);
  });
});
