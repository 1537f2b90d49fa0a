/**
 * The relay's half of the durability rule, on real sockets: a chunk carrying a statement is
 * forwarded only once the spool write carrying its record happened (`whenSpooled`), chunks
 * behind it keep their order, and nothing is forwarded when the spool cannot take the record
 * (the client gets FATAL 57P03, the server sees nothing of it). The audit is a recording
 * stand-in here: the part under test is the relay.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { AirlockError, ErrorCodes } from '../../core/errors.ts';
import { AuditExchangeImpl } from '../../core/audit/exchange.ts';
import type { AuditReceipt, AuditRecorder, Grant, Session } from '../../core/plugin.ts';
import { Relay } from '../../plugins/postgres/relay.ts';
import { SessionSettings } from '../../plugins/postgres/session-settings.ts';
import { loadStatementParser } from '../../plugins/postgres/split-statements.ts';

before(() => loadStatementParser());

function queryMessage(sql: string): Buffer {
  const body = Buffer.from(sql + '\0', 'utf8');
  const head = Buffer.alloc(5);
  head.write('Q', 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

/** Two connected TCP sockets. */
async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const a = connect(port, '127.0.0.1');
  const [b] = await accepted;
  await once(a, 'connect');
  server.close();
  return [a, b];
}

interface Spool {
  /** What happened, in order: `record <seq>`, `spool`, and `upstream <bytes>` from the test's side. */
  readonly events: string[];
  failNext: boolean;
}

function recordingAudit(spool: Spool): AuditRecorder {
  let seq = 0;
  const receipt = (): AuditReceipt => ({ seq: ++seq, spooled: Promise.resolve(), durable: Promise.resolve() });
  const unused = (): never => {
    throw new Error('not used by the relay');
  };
  return {
    record: () => receipt(),
    authFailed: unused,
    authRefused: unused,
    exchange: (_on, event) =>
      new AuditExchangeImpl((type) => {
        const r = receipt();
        spool.events.push(`record ${type} ${r.seq}`);
        return r;
      }, event),
    // As the pipeline does: the turn's one spool write happens at the end of the turn.
    whenSpooled: (fn) =>
      void setImmediate(() => {
        if (spool.failNext) return fn(new AirlockError(ErrorCodes.AUDIT_UNAVAILABLE, 'audit spool write failed: ENOSPC'));
        spool.events.push('spool');
        fn(undefined);
      }),
  };
}

function fakeSession(ended: string[]): Session {
  const grant: Grant = { id: 'AGTEST', agent: 'local:bot', resource: 'db', resourceType: 'postgres', access: 'write', scope: {}, task: 't', status: 'active', createdAt: '', expiresAt: null, ttlMs: 60_000 };
  return {
    id: 's_test',
    grant,
    openedAt: Date.now(),
    record: () => ({ seq: 0, spooled: Promise.resolve(), durable: Promise.resolve() }),
    attachCloser: () => {},
    cut: undefined,
    signal: new AbortController().signal,
    end: (reason) => void ended.push(reason),
    closed: false,
  };
}

async function relayWith(spool: Spool) {
  const [client, clientSide] = await socketPair();
  const [upstreamSide, upstream] = await socketPair();
  const ended: string[] = [];
  const relay = new Relay({
    client: clientSide,
    upstream: upstreamSide,
    session: fakeSession(ended),
    audit: recordingAudit(spool),
    maxMessageBytes: 1 << 20,
    recordParameters: false,
    readOnly: false,
    settings: new SessionSettings(new Map([['client_encoding', 'UTF8'], ['standard_conforming_strings', 'on']])),
    cancelUpstream: () => {},
    onDone: () => {},
    log: { warn: () => {} },
  });
  relay.start([], []);
  const atUpstream: Buffer[] = [];
  upstream.on('data', (d: Buffer) => {
    spool.events.push(`upstream ${d.length}`);
    atUpstream.push(d);
  });
  const fromGateway: Buffer[] = [];
  client.on('data', (d: Buffer) => fromGateway.push(d));
  const stop = () => {
    for (const s of [client, clientSide, upstreamSide, upstream]) s.destroy();
  };
  return { client, upstream, atUpstream, fromGateway, ended, stop };
}

/** A relay over real sockets for one test, stopped whatever happens. */
async function withRelay(failNext: boolean, run: (r: Awaited<ReturnType<typeof relayWith>>, spool: Spool) => Promise<void>): Promise<void> {
  const spool: Spool = { events: [], failNext };
  const r = await relayWith(spool);
  try {
    await run(r, spool);
  } finally {
    r.stop();
  }
}

/** Waits until the upstream side holds `expected` bytes (however the kernel cut them), then compares. */
async function upstreamReceives(r: Awaited<ReturnType<typeof relayWith>>, expected: Buffer): Promise<void> {
  while (Buffer.concat(r.atUpstream).length < expected.length) await once(r.upstream, 'data');
  assert.deepEqual(Buffer.concat(r.atUpstream), expected);
}

test('a statement is forwarded, byte for byte, only after the spool write that carries its record', () =>
  withRelay(false, async (r, spool) => {
    const q = queryMessage('select 1');
    r.client.write(q);
    await upstreamReceives(r, q);
    assert.deepEqual(spool.events, ['record pg.query 1', 'spool', `upstream ${q.length}`]);
  }));

test('two statements in one chunk: both records are written, in order, before any byte of it leaves', () =>
  withRelay(false, async (r, spool) => {
    const both = Buffer.concat([queryMessage('select 1'), queryMessage('select 2')]);
    r.client.write(both);
    await upstreamReceives(r, both);
    const firstUpstream = spool.events.findIndex((e) => e.startsWith('upstream'));
    assert.ok(spool.events.indexOf('spool') < firstUpstream, JSON.stringify(spool.events));
    assert.deepEqual(spool.events.filter((e) => e.startsWith('record')), ['record pg.query 1', 'record pg.query 2']);
  }));

test('when the spool cannot take the record, the statement never reaches the server and the client gets FATAL 57P03', () =>
  withRelay(true, async (r, spool) => {
    r.client.write(queryMessage('delete from accounts'));
    await once(r.client, 'end');
    const reply = Buffer.concat(r.fromGateway).toString('latin1');
    assert.match(reply, /^E/, 'an ErrorResponse');
    assert.match(reply, /SFATAL/);
    assert.match(reply, /C57P03/);
    assert.match(reply, /audit/);
    assert.deepEqual(r.atUpstream.map((b) => b.toString('latin1')).filter((t) => t.includes('delete')), [], 'the server saw nothing of the statement');
    assert.ok(!spool.events.includes('spool'));
    assert.deepEqual(r.ended, ['error']);
  }));
