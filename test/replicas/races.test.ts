/**
 * Races between replicas on one store: concurrent approve/revoke pairs end in one state
 * per grant with one record per transition; 200 grants expiring with three replicas'
 * timers armed give exactly 200 `grant.expired` records; `airlock audit verify` checks the
 * three replicas' chains at once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runAuditVerify } from '../../core/cli/audit-verify.ts';
import { api, startStack, waitFor, AGENT_NAME, ADMIN, APPROVAL_AGENT, type Replica, type Stack } from './stack.ts';

let stack: Stack;
let R: Replica[];
let agent: string;
let needsApproval: string;
let admin: string;

before(async () => {
  stack = await startStack();
  R = stack.replicas;
  agent = await stack.token(R[0]!, AGENT_NAME);
  needsApproval = await stack.token(R[1]!, APPROVAL_AGENT);
  admin = await stack.token(R[2]!, ADMIN);
});

after(async () => {
  await stack?.close();
});

const countBy = (type: string, ids: Set<string>) => {
  const n = new Map<string, number>();
  for (const r of stack.records()) if (r.type === type && ids.has(String(r.grant))) n.set(String(r.grant), (n.get(String(r.grant)) ?? 0) + 1);
  return n;
};

describe('races across replicas', () => {
  test('50 concurrent approve/revoke pairs end in one consistent state per grant, one record each', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) {
      const res = await api(R[i % 3]!, 'POST', '/v1/grants', needsApproval, { resource: 'reporting', access: 'read', ttl: '5m', task: `race ${i}` });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      ids.push(String(res.body.id));
    }
    // Every replica knows every pending grant before the race starts.
    await waitFor('pending grants everywhere', async () => {
      for (const r of R) {
        const list = (await api(r, 'GET', '/v1/grants', admin)).body.grants as Array<{ id: string }>;
        const known = new Set(list.map((g) => g.id));
        if (!ids.every((id) => known.has(id))) return undefined;
      }
      return true;
    });
    const outcomes = await Promise.all(
      ids.map(async (id, i) => {
        const [approve, revoke] = await Promise.all([api(R[i % 3]!, 'POST', `/v1/grants/${id}/approve`, admin), api(R[(i + 1) % 3]!, 'DELETE', `/v1/grants/${id}`, admin)]);
        return { id, approve: approve.status, revoke: revoke.status };
      }),
    );
    for (const o of outcomes) {
      assert.ok(o.approve === 200 || o.approve === 409, `approve ${o.id}: ${o.approve}`);
      // The revocation wins either way: against a pending grant, or after the approval.
      assert.equal(o.revoke, 200, `revoke ${o.id}`);
    }
    await waitFor('every replica agrees', async () => {
      for (const id of ids) {
        const states = await Promise.all(R.map(async (r) => (await api(r, 'GET', `/v1/grants/${id}`, admin)).body.status));
        if (!states.every((s) => s === 'revoked')) return undefined;
      }
      return true;
    });
    await new Promise((r) => setTimeout(r, 1_500)); // buffered audit: let every spool write land
    const set = new Set(ids);
    const approved = countBy('grant.approved', set);
    const revoked = countBy('grant.revoked', set);
    for (const o of outcomes) {
      assert.equal(revoked.get(o.id) ?? 0, 1, `grant.revoked records for ${o.id}`);
      assert.equal(approved.get(o.id) ?? 0, o.approve === 200 ? 1 : 0, `grant.approved records for ${o.id}`);
    }
  });

  test('200 grants expiring across three replicas yield exactly 200 grant.expired records', async (t) => {
    const ids = new Set<string>();
    for (let batch = 0; batch < 20; batch++) {
      const res = await Promise.all(
        Array.from({ length: 10 }, (_, i) => api(R[(batch * 10 + i) % 3]!, 'POST', '/v1/grants', agent, { resource: 'reporting', access: 'read', ttl: '10s', task: `expiry ${batch * 10 + i}` })),
      );
      for (const r of res) {
        assert.equal(r.status, 201, JSON.stringify(r.body));
        ids.add(String(r.body.id));
      }
    }
    await waitFor('200 expired everywhere', async () => {
      for (const r of R) {
        const list = (await api(r, 'GET', '/v1/grants', admin)).body.grants as Array<{ id: string; status: string }>;
        if (list.filter((g) => ids.has(g.id) && g.status === 'expired').length !== 200) return undefined;
      }
      return true;
    }, 90_000);
    await new Promise((r) => setTimeout(r, 2_000));
    const expired = stack.records().filter((r) => r.type === 'grant.expired' && ids.has(String(r.grant)));
    const byReplica = new Map<string, number>();
    for (const r of expired) byReplica.set(String(r.replica), (byReplica.get(String(r.replica)) ?? 0) + 1);
    t.diagnostic(`grant.expired records by replica: ${JSON.stringify(Object.fromEntries(byReplica))}`);
    assert.equal(expired.length, 200);
    assert.equal(new Set(expired.map((r) => r.grant)).size, 200);
  });

  test('airlock audit verify checks the three replicas\' chains at once', async () => {
    const files = R.flatMap((r) => stack.spoolFiles(r));
    const keys = R.flatMap((r) => ['--key', `${r.dataDir}/keys/gateway.pub.jwk`]);
    const out: string[] = [];
    const err: string[] = [];
    const code = await runAuditVerify([...files, ...keys], (l) => out.push(l), (l) => err.push(l));
    assert.equal(code, 0, [...out, ...err].join('\n'));
    const text = out.join('\n');
    for (const r of R) {
      const id = (await import('node:fs')).readFileSync(`${r.dataDir}/gateway-id`, 'utf8').trim();
      assert.match(text, new RegExp(id), `the report names ${r.name}'s chain`);
    }
  });
});
