/**
 * The behaviour every SharedStore must have, run against the file store (one instance) and
 * PostgreSQL (three instances on one database, i.e. three replicas' connections).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { importJWK, jwtVerify, SignJWT } from 'jose';
import type { SharedStore, StoredGrant, TransitionOutcome } from '../../core/store/types.ts';
import { loadOrCreateIssuerKey } from '../../core/store/issuer-key.ts';
import { ChangeLog, makeGrant, waitFor } from './fixtures.ts';

export interface BackingStore {
  make(replicaId: string): SharedStore;
  cleanup(): Promise<void>;
}

export interface StoreBackend {
  readonly name: string;
  /** Instances that may be open on one backing store at once (file: 1, postgres: 3). */
  readonly instances: number;
  fresh(): Promise<BackingStore>;
}

interface Opened {
  stores: SharedStore[];
  logs: ChangeLog[];
}

async function withStores(backend: StoreBackend, fn: (o: Opened, backing: BackingStore) => Promise<void>): Promise<void> {
  const backing = await backend.fresh();
  const stores: SharedStore[] = [];
  const logs: ChangeLog[] = [];
  try {
    for (let i = 0; i < backend.instances; i++) {
      const log = new ChangeLog();
      const store = backing.make(`r${i}`);
      stores.push(store);
      logs.push(log);
      await store.open({ onChange: log.onChange });
    }
    await fn({ stores, logs }, backing);
  } finally {
    for (const s of stores) await s.close().catch(() => {});
    await backing.cleanup();
  }
}

/** Every instance has seen every change up to the newest revision any of them wrote. */
async function allCaughtUp(o: Opened, revision: number): Promise<void> {
  await waitFor(`every instance to reach revision ${revision}`, () => o.logs.every((l) => (l.changes.at(-1)?.revision ?? 0) >= revision), 15_000);
}

function winners(outcomes: TransitionOutcome[]): Extract<TransitionOutcome, { won: true }>[] {
  return outcomes.filter((o): o is Extract<TransitionOutcome, { won: true }> => o.won);
}

export function storeConformance(backend: StoreBackend): void {
  const at = (i: number, o: Opened) => o.stores[i % o.stores.length]!;

  test(`${backend.name}: a created grant reads back, a duplicate id is refused, and it survives a reopen`, () =>
    withStores(backend, async (o, backing) => {
      const g = makeGrant();
      const revision = await o.stores[0]!.createGrant(g);
      assert.ok(revision > 0);
      assert.deepEqual(await at(1, o).getGrant(g.id), g);
      await assert.rejects(o.stores[0]!.createGrant(g));
      assert.equal(await o.stores[0]!.getGrant('AGNOSUCHGRANT2345672'), undefined);
      for (const s of o.stores) await s.close();
      const again = backing.make('again');
      o.stores.splice(0, o.stores.length, again);
      const snap = await again.open();
      assert.deepEqual(snap.grants.find((x) => x.id === g.id), g);
    }));

  test(`${backend.name}: transitions follow the state machine and say who won`, () =>
    withStores(backend, async (o) => {
      const s = o.stores[0]!;
      const pending = makeGrant({ status: 'pending', ttlMs: 60_000 });
      await s.createGrant(pending);
      const now = Date.now();
      assert.deepEqual(await s.transition('AGNOSUCHGRANT2345672', { kind: 'revoke', by: 'admin', at: now }), { won: false, record: undefined, reason: 'unknown' });
      const expireEarly = await s.transition(pending.id, { kind: 'expire', at: now });
      assert.equal(expireEarly.won, false);

      const approved = await at(1, o).transition(pending.id, { kind: 'approve', by: 'local:alice', at: now });
      assert.ok(approved.won);
      assert.equal(approved.record.status, 'active');
      assert.equal(approved.record.approvedBy, 'local:alice');
      assert.equal(approved.record.expiresAt, new Date(now + 60_000).toISOString());
      assert.equal(approved.previous.status, 'pending');

      const second = await s.transition(pending.id, { kind: 'approve', by: 'local:bob', at: now });
      assert.equal(second.won, false);
      assert.equal(second.won === false && second.reason, 'state');
      assert.equal(second.record?.approvedBy, 'local:alice');

      const revoked = await s.transition(pending.id, { kind: 'revoke', by: 'local:bob', at: now + 1 });
      assert.ok(revoked.won && revoked.record.status === 'revoked' && revoked.record.revokedBy === 'local:bob');
      assert.ok(revoked.won && approved.won && revoked.revision > approved.revision);
      assert.equal((await s.transition(pending.id, { kind: 'revoke', by: 'local:alice', at: now + 2 })).won, false);

      const toDeny = makeGrant({ status: 'pending' });
      await s.createGrant(toDeny);
      const denied = await s.transition(toDeny.id, { kind: 'deny', by: 'local:alice', reason: 'not today', at: now });
      assert.ok(denied.won && denied.record.status === 'denied' && denied.record.denyReason === 'not today');
      assert.equal((await s.transition(toDeny.id, { kind: 'approve', by: 'local:bob', at: now })).won, false);

      const due = makeGrant({ status: 'active', expiresAt: new Date(now - 1).toISOString() });
      await s.createGrant(due);
      assert.equal((await s.transition(due.id, { kind: 'approve', by: 'local:bob', at: now })).won, false);
      const expired = await at(2, o).transition(due.id, { kind: 'expire', at: now });
      assert.ok(expired.won && expired.record.status === 'expired');
      assert.equal((await s.transition(due.id, { kind: 'expire', at: now })).won, false);
      assert.equal((await s.getGrant(due.id))?.status, 'expired');
    }));

  test(`${backend.name}: 50 concurrent approve/revoke pairs per grant end in one consistent state with one winner per transition`, (t) =>
    withStores(backend, async (o) => {
      const grants = Array.from({ length: 50 }, () => makeGrant({ status: 'pending' }));
      for (const g of grants) await o.stores[0]!.createGrant(g);
      const now = Date.now();
      // Per grant, from every instance at once: two approvals and two revocations.
      const results = await Promise.all(
        grants.map(async (g, gi) => {
          const calls = [
            at(gi, o).transition(g.id, { kind: 'approve', by: 'local:alice', at: now }),
            at(gi + 1, o).transition(g.id, { kind: 'revoke', by: 'local:bob', at: now }),
            at(gi + 2, o).transition(g.id, { kind: 'approve', by: 'local:carol', at: now }),
            at(gi + 1, o).transition(g.id, { kind: 'revoke', by: 'local:dave', at: now }),
          ];
          const [a1, r1, a2, r2] = await Promise.all(calls);
          return { g, approvals: [a1!, a2!], revokes: [r1!, r2!] };
        }),
      );
      let lastRevision = 0;
      for (const { g, approvals, revokes } of results) {
        const approveWins = winners(approvals);
        const revokeWins = winners(revokes);
        assert.ok(approveWins.length <= 1, `grant ${g.id}: ${approveWins.length} approvals won`);
        assert.equal(revokeWins.length, 1, `grant ${g.id}: exactly one revocation wins`);
        const revoke = revokeWins[0]!;
        if (approveWins.length === 1) {
          assert.ok(approveWins[0]!.revision < revoke.revision, 'an approval that won came before the revocation');
          assert.equal(revoke.previous.status, 'active');
          assert.equal(revoke.record.approvedBy, approveWins[0]!.record.approvedBy);
        } else {
          assert.equal(revoke.previous.status, 'pending');
        }
        lastRevision = Math.max(lastRevision, revoke.revision);
        for (const s of o.stores) {
          const final = await s.getGrant(g.id);
          assert.equal(final?.status, 'revoked');
          assert.deepEqual(final, revoke.record);
        }
      }
      const approvedFirst = results.filter((r) => winners(r.approvals).length === 1).length;
      t.diagnostic(`approval won before the revocation on ${approvedFirst} of 50 grants; revoked while pending on ${50 - approvedFirst}`);
      await allCaughtUp(o, lastRevision);
      for (const { g, approvals } of results) {
        const expected = ['created', ...(winners(approvals).length ? ['approve'] : []), 'revoke'];
        for (const log of o.logs) assert.deepEqual(log.grantChanges(g.id).map((c) => c.change), expected, `feed of grant ${g.id}`);
      }
    }));

  test(`${backend.name}: 200 due grants swept by every instance at once expire exactly once each`, (t) =>
    withStores(backend, async (o) => {
      const past = new Date(Date.now() - 1000).toISOString();
      const grants = Array.from({ length: 200 }, (_, i) => (i % 4 === 0 ? makeGrant({ status: 'pending', pendingUntil: past }) : makeGrant({ status: 'active', expiresAt: past })));
      for (const g of grants) await o.stores[0]!.createGrant(g);
      const alive = makeGrant({ status: 'active' });
      await o.stores[0]!.createGrant(alive);
      const now = Date.now();
      // Small batches so the sweeps interleave rather than one taking everything.
      const sweepAll = async (s: SharedStore): Promise<StoredGrant[]> => {
        const won: StoredGrant[] = [];
        for (;;) {
          const batch = await s.sweepExpired(now, 7);
          if (batch.length === 0) return won;
          won.push(...batch);
        }
      };
      const perSweeper = await Promise.all([0, 1, 2].map((i) => sweepAll(at(i, o))));
      t.diagnostic(`expiry wins per sweeper: ${perSweeper.map((w) => w.length).join(', ')}`);
      const ids = perSweeper.flat().map((g) => g.id);
      assert.equal(ids.length, 200, `expiry wins: ${perSweeper.map((w) => w.length).join(' + ')}`);
      assert.equal(new Set(ids).size, 200);
      assert.deepEqual(new Set(ids), new Set(grants.map((g) => g.id)));
      for (const g of grants) assert.equal((await at(1, o).getGrant(g.id))?.status, 'expired');
      assert.equal((await o.stores[0]!.getGrant(alive.id))?.status, 'active');
      assert.deepEqual(await o.stores[0]!.sweepExpired(now), []);
      const head = Math.max(...o.stores.map((s) => s.health().headRevision));
      await allCaughtUp(o, head);
      for (const log of o.logs) {
        const expiries = log.changes.filter((c) => c.kind === 'grant' && c.change === 'expire');
        assert.equal(expiries.length, 200, 'every instance hears of each expiry once');
      }
    }));

  test(`${backend.name}: the change feed delivers every change once, in revision order, own changes included`, () =>
    withStores(backend, async (o) => {
      const written: number[] = [];
      const grants = Array.from({ length: 20 }, () => makeGrant({ status: 'pending' }));
      await Promise.all(grants.map(async (g, i) => written.push(await at(i, o).createGrant(g))));
      for (const [i, g] of grants.entries()) {
        const out = await at(i + 1, o).transition(g.id, { kind: 'approve', by: 'local:alice', at: Date.now() });
        if (out.won) written.push(out.revision);
      }
      await at(2, o).state.put('ssm', 'cmd-1', { grant: grants[0]!.id });
      const top = Math.max(...written) + 1;
      await allCaughtUp(o, top);
      for (const [i, log] of o.logs.entries()) {
        const revs = log.revisions();
        assert.deepEqual(revs, [...revs].sort((a, b) => a - b), `instance ${i}: in order`);
        assert.equal(new Set(revs).size, revs.length, `instance ${i}: each once`);
        assert.equal(log.changes.filter((c) => c.kind === 'grant' && c.change === 'created').length, 20);
        assert.equal(log.changes.filter((c) => c.kind === 'grant' && c.change === 'approve').length, 20);
        const state = log.changes.find((c) => c.kind === 'state');
        assert.deepEqual(state && state.kind === 'state' && [state.namespace, state.key, state.value, state.origin], ['ssm', 'cmd-1', { grant: grants[0]!.id }, at(2, o).replicaId]);
        const own = log.changes.filter((c) => c.kind === 'grant' && c.origin === o.stores[i]!.replicaId);
        assert.ok(own.length > 0, `instance ${i} hears its own changes`);
      }
    }));

  test(`${backend.name}: a shared value is created once and every instance gets it; the issuer key signs tokens all verify`, () =>
    withStores(backend, async (o) => {
      let creations = 0;
      const values = await Promise.all(
        [0, 1, 2, 3, 4, 5].map((i) =>
          at(i, o).sharedValue('test-value', async () => {
            creations++;
            await new Promise((r) => setTimeout(r, 30));
            return `value-from-${i}`;
          }),
        ),
      );
      assert.equal(creations, 1);
      assert.equal(new Set(values).size, 1);
      await assert.rejects(o.stores[0]!.sharedValue('../escape', async () => 'x'), /invalid shared value name/);

      const keys = await Promise.all([0, 1, 2].map((i) => loadOrCreateIssuerKey(at(i, o))));
      assert.equal(new Set(keys.map((k) => k.kid)).size, 1);
      assert.equal(new Set(keys.map((k) => k.issuerId)).size, 1);
      const token = await new SignJWT({}).setProtectedHeader({ alg: 'EdDSA', kid: keys[0]!.kid }).setIssuer(`urn:airlock:${keys[0]!.issuerId}`)
        .setSubject('bot').setAudience('airlock').setExpirationTime('5m').sign(keys[0]!.privateKey);
      for (const k of keys) {
        const { payload } = await jwtVerify(token, await importJWK(k.publicJwk, 'EdDSA'), { issuer: `urn:airlock:${k.issuerId}`, audience: 'airlock' });
        assert.equal(payload.sub, 'bot');
      }
    }));

  test(`${backend.name}: plugin state is namespaced, shared between instances, first-writer-wins and expires`, () =>
    withStores(backend, async (o) => {
      const a = o.stores[0]!.state;
      const b = at(1, o).state;
      await a.put('ssm-commands', 'c1', { grant: 'AG1', until: 1 });
      assert.deepEqual(await b.get('ssm-commands', 'c1'), { grant: 'AG1', until: 1 });
      assert.equal(await b.get('pg-roles', 'c1'), undefined);
      assert.equal(await b.putIfAbsent('ssm-commands', 'c1', { grant: 'AG2' }), false);
      assert.deepEqual(await a.get('ssm-commands', 'c1'), { grant: 'AG1', until: 1 });
      const firsts = await Promise.all([0, 1, 2].map((i) => at(i, o).state.putIfAbsent('pg-roles', 'role_x', { by: i })));
      assert.equal(firsts.filter(Boolean).length, 1);
      await a.put('ssm-commands', 'old', 'gone soon', { expiresAt: Date.now() - 1 });
      assert.equal(await b.get('ssm-commands', 'old'), undefined);
      assert.equal(await b.putIfAbsent('ssm-commands', 'old', 'fresh'), true, 'an expired entry can be taken');
      assert.deepEqual((await b.list('ssm-commands')).map((e) => [e.key, e.value]), [['c1', { grant: 'AG1', until: 1 }], ['old', 'fresh']]);
      // A prefix is matched literally: LIKE's wildcards are nothing special in it.
      await a.put('ssm-commands', 'c_%x', 'odd key');
      assert.deepEqual((await b.list('ssm-commands', 'c')).map((e) => e.key), ['c1', 'c_%x']);
      assert.deepEqual((await b.list('ssm-commands', 'c_%')).map((e) => e.key), ['c_%x']);
      assert.deepEqual(await b.list('ssm-commands', 'none/'), []);
      await a.delete('ssm-commands', 'c_%x');
      assert.equal(await b.delete('ssm-commands', 'c1'), true);
      assert.equal(await a.delete('ssm-commands', 'c1'), false);
      assert.equal(await a.get('ssm-commands', 'c1'), undefined);
      await assert.rejects(a.put('Bad NS', 'k', 1), /invalid state namespace/);
    }));

  test(`${backend.name}: failed-login counters count across instances in a window`, () =>
    withStores(backend, async (o) => {
      const counts = await Promise.all(Array.from({ length: 30 }, (_, i) => at(i, o).failures.hit('10.0.0.7', 60_000)));
      assert.deepEqual([...counts].sort((x, y) => x - y), Array.from({ length: 30 }, (_, i) => i + 1));
      assert.equal(await at(1, o).failures.count('10.0.0.7', 60_000), 30);
      assert.equal(await at(1, o).failures.count('10.0.0.8', 60_000), 0);
      await new Promise((r) => setTimeout(r, 60));
      assert.equal(await at(2, o).failures.hit('10.0.0.7', 50), 1, 'a new window starts over');
      await o.stores[0]!.failures.reset('10.0.0.7');
      assert.equal(await at(1, o).failures.count('10.0.0.7', 60_000), 0);
    }));

  test(`${backend.name}: health reports a confirmed, connected view`, () =>
    withStores(backend, async (o) => {
      for (const s of o.stores) {
        const h = await waitFor('a connected store', () => (s.health().connected ? s.health() : undefined));
        assert.equal(h.type, backend.name === 'file' ? 'file' : 'postgres');
        assert.ok(h.viewAgeMs < 60_000);
        assert.equal(h.lastError, undefined);
      }
    }));
}
