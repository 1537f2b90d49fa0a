/** Console sessions: idle and absolute timeouts, sign-out, and cookie names over https. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConsoleSessions, IDLE_MS, ABSOLUTE_MS } from '../../core/console/session-store.ts';
import { cookieNames } from '../../core/console/security.ts';

test('a session ends after the idle timeout, and at its absolute end however active', () => {
  let now = 1_000_000;
  const sessions = new ConsoleSessions(() => now);
  const idle = sessions.create({ agent: 'local:ops', admin: true, method: 'token' });
  now += IDLE_MS - 1;
  assert.equal(sessions.get(idle.id)?.agent, 'local:ops');
  now += IDLE_MS - 1;
  assert.ok(sessions.get(idle.id), 'each request moves the idle deadline');
  now += IDLE_MS;
  assert.equal(sessions.get(idle.id), undefined);

  const busy = sessions.create({ agent: 'local:ops', admin: true, method: 'oidc' });
  const end = now + ABSOLUTE_MS;
  while (now + IDLE_MS / 2 < end) {
    now += IDLE_MS / 2;
    assert.ok(sessions.get(busy.id));
  }
  now = end;
  assert.equal(sessions.get(busy.id), undefined);
});

test("a pasted token's expiry ends the session sooner; sign-out ends it at once", () => {
  let now = 5_000_000;
  const sessions = new ConsoleSessions(() => now);
  const s = sessions.create({ agent: 'local:bot', admin: false, method: 'token', notAfter: now + 60_000 });
  now += 59_000;
  assert.ok(sessions.get(s.id));
  now += 1_000;
  assert.equal(sessions.get(s.id), undefined);
  const t = sessions.create({ agent: 'local:bot', admin: false, method: 'token' });
  sessions.end(t.id);
  assert.equal(sessions.get(t.id), undefined);
  assert.equal(sessions.get('made-up-id'), undefined);
});

test('over https the cookies are __Host- prefixed and Secure', () => {
  assert.deepEqual(cookieNames('https://airlock.example'), { session: '__Host-airlock_console', pre: '__Host-airlock_console_pre', oidc: '__Host-airlock_console_oidc', secure: true });
  assert.equal(cookieNames('http://127.0.0.1:8080').secure, false);
});
