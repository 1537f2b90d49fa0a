/**
 * Robustness: thousands of random and mutated messages over many connections, before and
 * after authentication. The gateway never crashes, a healthy session running alongside keeps
 * answering, each deterministic protocol violation gets a FATAL ErrorResponse (08P01) and a
 * close, and every fuzzed connection ends (error or close) without touching the others.
 * The random stream is seeded, so a failure can be replayed (the seed is in the test name).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import postgres from 'postgres';
import { startCluster, startFixture, grant, type PgFixture, type PgGrant } from './fixture.ts';
import type { PostgresCluster } from '../harness/postgres-cluster.ts';
import { cstr, i16, i32, rawLogin, startupFor, typed, untyped } from './raw-client.ts';
import { mulberry32 } from '../harness/prng.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20261125);
const MAX_MESSAGE = 64 * 1024;

const rand = mulberry32(SEED);
const int = (n: number) => Math.floor(rand() * n);
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));

/** Valid frontend messages to mutate. */
function validMessages(): Buffer[] {
  return [
    typed('Q', cstr('select 1')),
    typed('P', Buffer.concat([cstr('s1'), cstr('select $1::int'), i16(1), i32(23)])),
    typed('B', Buffer.concat([cstr(''), cstr('s1'), i16(0), i16(1), i32(1), Buffer.from('7'), i16(0)])),
    typed('D', Buffer.concat([Buffer.from('P'), cstr('')])),
    typed('E', Buffer.concat([cstr(''), i32(0)])),
    typed('C', Buffer.concat([Buffer.from('S'), cstr('s1')])),
    typed('H', Buffer.alloc(0)),
    typed('S', Buffer.alloc(0)),
  ];
}

function mutate(msg: Buffer): Buffer {
  const m = Buffer.from(msg);
  switch (int(5)) {
    case 0: // flip bytes
      for (let i = 0, n = 1 + int(4); i < n; i++) m[int(m.length)] = int(256);
      return m;
    case 1: // truncate
      return m.subarray(0, int(m.length));
    case 2: // wrong length field
      m.writeInt32BE(int(3) === 0 ? -int(1000) : int(200), 1);
      return m;
    case 3: // random type byte
      m[0] = int(256);
      return m;
    default: // append garbage
      return Buffer.concat([m, bytes(int(20))]);
  }
}

function randomFrame(): Buffer {
  const body = bytes(int(64));
  if (int(4) === 0) return Buffer.concat([Buffer.from([int(256)]), i32(int(1 << 20) - 1000), body]);
  return typed(int(256), body);
}

interface Outcome {
  gotError: boolean;
  firstByte: number | undefined;
  closed: boolean;
  data: Buffer;
}

/** Send bytes, optionally half-close, and collect until the server closes (or the deadline). */
function exchange(sock: Socket, payload: Buffer, halfCloseAfterMs: number | null, deadlineMs = 8000): Promise<Outcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let finished = false;
    const finish = (closed: boolean) => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      if (half) clearTimeout(half);
      const data = Buffer.concat(chunks);
      sock.destroy();
      resolve({ gotError: hasErrorResponse(data), firstByte: data[0], closed, data });
    };
    const deadline = setTimeout(() => finish(false), deadlineMs);
    const half = halfCloseAfterMs === null ? null : setTimeout(() => sock.end(), halfCloseAfterMs);
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('close', () => finish(true));
    sock.on('error', () => finish(true));
    sock.write(payload);
  });
}

/** Walk backend frames looking for an ErrorResponse. */
function hasErrorResponse(data: Buffer): boolean {
  let pos = 0;
  while (pos + 5 <= data.length) {
    if (data[pos] === 0x45) return true;
    const len = data.readInt32BE(pos + 1);
    if (len < 4) return false;
    pos += 1 + len;
  }
  return false;
}

/** The SQLSTATE (C field) of the first ErrorResponse in a backend byte stream. */
function sqlstateOf(data: Buffer): string | undefined {
  let pos = 0;
  while (pos + 5 <= data.length) {
    const len = data.readInt32BE(pos + 1);
    if (len < 4) return undefined;
    if (data[pos] === 0x45) {
      const fields = data.subarray(pos + 5, pos + 1 + len).toString('latin1').split('\0');
      return fields.find((x) => x.startsWith('C'))?.slice(1);
    }
    pos += 1 + len;
  }
  return undefined;
}

function openSocket(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: f.host, port: f.port }, () => resolve(s));
    s.once('error', reject);
  });
}

async function loginRaw(g: PgGrant): Promise<Socket> {
  return await rawLogin(f.host, f.port, g);
}

let cluster: PostgresCluster;
let f: PgFixture;
before(async () => {
  cluster = await startCluster();
  // 12 fuzzing sessions at once on one grant: above the default maxSessions (10), which is not what this test is about.
  f = await startFixture(cluster, { durability: 'buffered', listenerExtra: `maxMessageBytes: ${MAX_MESSAGE}, handshakeTimeoutMs: 3000, allowPlaintext: true`, policyExtra: 'maxSessions: 50' });
});
after(async () => {
  await f?.close();
  await cluster?.stop();
});

/** A healthy session that must keep working through everything below. */
async function withHealthySession<T>(work: () => Promise<T>): Promise<{ result: T; healthyQueries: number }> {
  const g = await grant(f);
  const sql = postgres(g.url, { max: 1, ssl: 'require', onnotice: () => {} });
  let stop = false;
  let count = 0;
  const loop = (async () => {
    while (!stop) {
      const [row] = await sql`select ${count}::int as n, count(*)::int as c from revenue`;
      assert.deepEqual({ ...row }, { n: count, c: 50 });
      count++;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  try {
    const result = await work();
    stop = true;
    await loop;
    return { result, healthyQueries: count };
  } finally {
    stop = true;
    await loop.catch(() => {});
    await sql.end();
  }
}

async function inBatches<T>(n: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += width) out.push(...(await Promise.all(Array.from({ length: Math.min(width, n - i) }, (_, j) => fn(i + j)))));
  return out;
}

test(`deterministic protocol violations get FATAL 08P01 and a close (seed ${SEED})`, async () => {
  const g = await grant(f);
  const { healthyQueries } = await withHealthySession(async () => {
    const preAuth: Array<[string, Buffer]> = [
      ['startup length below minimum', Buffer.from([0, 0, 0, 4, 0, 0, 0, 0])],
      ['startup length huge', Buffer.concat([i32(0x7fffffff), i32(196608)])],
      ['protocol 2.0', untyped(Buffer.concat([i32(131072), cstr('user'), cstr('x'), Buffer.from([0])]))],
      ['unterminated parameters', untyped(Buffer.concat([i32(196608), Buffer.from('user\0abc')]))],
      ['duplicate parameter', untyped(Buffer.concat([i32(196608), cstr('user'), cstr('a'), cstr('user'), cstr('b'), Buffer.from([0])]))],
      ['data after SSLRequest', Buffer.concat([untyped(i32(80877103)), Buffer.from('plaintext')])],
    ];
    for (const [name, payload] of preAuth) {
      const out = await exchange(await openSocket(), payload, null);
      assert.ok(out.closed, `${name}: closed`);
      assert.equal(sqlstateOf(out.data), '08P01', `${name}: ${out.data.toString('latin1')}`);
    }
    const postAuth: Array<[string, Buffer]> = [
      ['unknown message type', typed('z', Buffer.from('hello'))],
      ['length below 4', Buffer.from([0x51, 0, 0, 0, 2])],
      ['message over maxMessageBytes', Buffer.concat([Buffer.from('Q'), i32(1 << 30)])],
      ['query without terminator', typed('Q', Buffer.from('select 1'))],
      ['bind with negative parameter count', typed('B', Buffer.concat([cstr(''), cstr(''), i16(0), i16(-5)]))],
      ['parse with trailing garbage', typed('P', Buffer.concat([cstr(''), cstr('select 1'), i16(0), Buffer.from('xx')]))],
      ['authentication message after login', typed('p', cstr('password'))],
    ];
    for (const [name, payload] of postAuth) {
      const sock = await loginRaw(g);
      const out = await exchange(sock, payload, null);
      assert.ok(out.closed, `${name}: closed`);
      assert.equal(sqlstateOf(out.data), '08P01', `${name}: ${out.data.toString('latin1')}`);
    }
  });
  assert.ok(healthyQueries > 0);
  const closedWithError = f.gw.auditRecords().filter((r) => r.grant === g.id && r.type === 'session.closed' && r.data?.reason === 'error');
  assert.equal(closedWithError.length, 7, 'each violating session is closed with reason error');
});

test(`thousands of random and mutated messages: no crash, healthy session unaffected (seed ${SEED})`, async () => {
  const g = await grant(f);
  let messages = 0;
  const { result: outcomes, healthyQueries } = await withHealthySession(async () => {
    // Before authentication: random bytes, mutated startup packets, random SSL/cancel codes.
    const pre = await inBatches(400, 25, async () => {
      const kind = int(3);
      let payload: Buffer;
      if (kind === 0) payload = bytes(1 + int(100));
      else if (kind === 1) payload = mutate(Buffer.concat([Buffer.from([0]), startupFor(g.id)])).subarray(1);
      else payload = untyped(Buffer.concat([i32([80877103, 80877104, 80877102, 196608, int(1 << 30)][int(5)]!), bytes(int(16))]));
      messages++;
      return await exchange(await openSocket(), payload, 300);
    });
    // After authentication: bursts of random frames and mutated valid messages.
    const post = await inBatches(120, 12, async () => {
      const sock = await loginRaw(g);
      const parts: Buffer[] = [];
      const n = 10 + int(30);
      for (let i = 0; i < n; i++) {
        const k = int(3);
        if (k === 0) parts.push(randomFrame());
        else if (k === 1) parts.push(mutate(validMessages()[int(8)]!));
        else parts.push(typed('Q', cstr(bytes(int(40)).toString('latin1').replace(/\0/g, ' '))));
      }
      messages += n;
      return await exchange(sock, Buffer.concat(parts), 300);
    });
    return [...pre, ...post];
  });
  assert.ok(messages >= 2000, `sent ${messages} messages`);
  const stuck = outcomes.filter((o) => !o.closed);
  assert.equal(stuck.length, 0, `${stuck.length} connections neither errored nor closed`);
  assert.ok(outcomes.filter((o) => o.gotError).length > outcomes.length / 2, 'most bad connections are told why');
  assert.ok(healthyQueries > 0);
  // The gateway still serves new sessions normally.
  const after = await grant(f);
  const sql = postgres(after.url, { max: 1, ssl: 'require' });
  try {
    assert.deepEqual([...(await sql`select 1 as ok`)], [{ ok: 1 }]);
  } finally {
    await sql.end();
  }
});
