/**
 * The record says what ran (issue 17 items 1-2, issue 11 items 1 and 7): a refused re-Parse
 * cannot rewrite an Execute's record; statements in LATIN1 are recorded as the client meant
 * them; the splitter trick under standard_conforming_strings=off is refused, and a batch's
 * whole text is in every record of it; SHOW is recorded with its row count. Real
 * PostgreSQL 15 through a real gateway; raw protocol where exact bytes matter.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, startFixture, grant, psql, statementOutcomes, type PgFixture } from './fixture.ts';
import type { PostgresCluster } from '../harness/postgres-cluster.ts';
import { eventually } from '../harness/gateway.ts';
import type { AuditRecord } from '../../core/plugin.ts';
import { rawSession } from './raw-client.ts';
import { exchange, fieldsOf, msg, shape } from './wire-exchange.ts';

let cluster: PostgresCluster;
let f: PgFixture;
before(async () => {
  cluster = await startCluster();
  f = await startFixture(cluster, { listenerExtra: 'allowPlaintext: true' });
});
after(async () => {
  await f?.close();
  await cluster?.stop();
});

function recordsOf(grantId: string, type?: string): AuditRecord[] {
  return f.gw.auditRecords().filter((r) => r.grant === grantId && (type === undefined || r.type === type));
}

test('a refused re-Parse (42P05) does not rewrite the record: the Execute is recorded with the DELETE the server ran', async () => {
  const g = await grant(f, 'write');
  await cluster.sql("insert into notes (body) values ('reparse-victim')", 'reporting');
  const s = await rawSession(f.host, f.port, g);
  try {
    let r = await exchange(s.sock, Buffer.concat([msg.parse('S1', "delete from notes where body = 'reparse-victim'"), msg.sync()]));
    assert.deepEqual(shape(r.messages), ['1', 'Z']);
    r = await exchange(s.sock, Buffer.concat([msg.parse('S1', 'select 1'), msg.sync()]));
    assert.deepEqual(shape(r.messages), ['E:42P05', 'Z']);
    r = await exchange(s.sock, Buffer.concat([msg.bind('', 'S1'), msg.execute(''), msg.sync()]));
    assert.deepEqual(shape(r.messages), ['2', 'C', 'Z']);
    assert.equal(r.messages[1]!.body.toString('utf8', 0, 8), 'DELETE 1');
    // The same trick pipelined in one write: the re-Parse is still open when the Execute goes.
    await cluster.sql("insert into notes (body) values ('reparse-victim')", 'reporting');
    r = await exchange(s.sock, Buffer.concat([msg.parse('S1', 'select 2'), msg.sync(), msg.bind('', 'S1'), msg.execute(''), msg.sync()]), 2);
    assert.deepEqual(shape(r.messages), ['E:42P05', 'Z', '2', 'C', 'Z']);
  } finally {
    s.sock.destroy();
  }
  const executes = recordsOf(g.id, 'pg.query');
  assert.equal(executes.length, 2);
  assert.equal(executes[0]!.data?.sql, "delete from notes where body = 'reparse-victim'");
  assert.equal(executes[0]!.data?.statement, 'S1');
  assert.equal(executes[1]!.data?.sql, "delete from notes where body = 'reparse-victim'", 'a named re-Parse of an existing name surely fails: no guess needed');
  assert.ok(!JSON.stringify(executes).includes('select 1'));
});

test('an Execute of a name airlock does not know is recorded as unknown, never with a guess; Close and DEALLOCATE forget', async () => {
  const g = await grant(f);
  const s = await rawSession(f.host, f.port, g);
  try {
    let r = await exchange(s.sock, Buffer.concat([msg.bind('', 'nope'), msg.execute(''), msg.sync()]));
    assert.deepEqual(shape(r.messages), ['E:26000', 'Z']);
    r = await exchange(s.sock, Buffer.concat([msg.parse('A', 'select 10'), msg.sync(), msg.close('S', 'A'), msg.sync()]), 2);
    r = await exchange(s.sock, Buffer.concat([msg.bind('', 'A'), msg.execute(''), msg.sync()]));
    assert.deepEqual(shape(r.messages), ['E:26000', 'Z']);
    r = await exchange(s.sock, msg.query('prepare b as select 20'));
    r = await exchange(s.sock, Buffer.concat([msg.bind('', 'b'), msg.execute(''), msg.sync()]));
    assert.deepEqual(shape(r.messages), ['2', 'D', 'C', 'Z']);
    r = await exchange(s.sock, msg.query('deallocate b'));
    r = await exchange(s.sock, Buffer.concat([msg.bind('', 'b'), msg.execute(''), msg.sync()]));
    assert.deepEqual(shape(r.messages), ['E:26000', 'Z']);
  } finally {
    s.sock.destroy();
  }
  const q = recordsOf(g.id, 'pg.query').map((x) => ({ sql: x.data?.sql, prepared: x.data?.prepared, statement: x.data?.statement }));
  assert.deepEqual(q, [
    { sql: null, prepared: 'unknown', statement: 'nope' },
    { sql: null, prepared: 'unknown', statement: 'A' },
    { sql: 'prepare b as select 20', prepared: undefined, statement: undefined },
    { sql: 'prepare b as select 20', prepared: undefined, statement: 'b' },
    { sql: 'deallocate b', prepared: undefined, statement: undefined },
    { sql: null, prepared: 'unknown', statement: 'b' },
  ]);
});

test('a LATIN1 statement is recorded as the client meant it, with the exact bytes', async () => {
  const g = await grant(f);
  const s = await rawSession(f.host, f.port, g, { client_encoding: 'LATIN1' });
  try {
    assert.equal(s.parameters.get('client_encoding'), 'LATIN1');
    const bytes = Buffer.from("select 'café' as v", 'latin1');
    const r = await exchange(s.sock, msg.query(bytes));
    assert.deepEqual(shape(r.messages), ['T', 'D', 'C', 'Z']);
    // Switch mid-session: ParameterStatus is followed.
    await exchange(s.sock, msg.query('set client_encoding = WIN1251'));
    await exchange(s.sock, msg.query(Buffer.from([...Buffer.from("select '"), 0xcf, 0xf0, 0xe8, ...Buffer.from("'")])));
  } finally {
    s.sock.destroy();
  }
  const q = recordsOf(g.id, 'pg.query');
  assert.equal(q[0]!.data?.sql, "select 'café' as v");
  assert.equal(q[0]!.data?.encoding, 'LATIN1');
  assert.equal(Buffer.from(String(q[0]!.data?.sqlBase64), 'base64').toString('latin1'), "select 'café' as v");
  assert.equal(q[2]!.data?.sql, "select 'При'");
  assert.equal(q[2]!.data?.encoding, 'WIN1251');
});

test('invalid UTF-8 is kept as exact bytes beside the text', async () => {
  const g = await grant(f);
  const s = await rawSession(f.host, f.port, g);
  try {
    const r = await exchange(s.sock, msg.query(Buffer.from([...Buffer.from("select '"), 0xff, 0xfe, ...Buffer.from("'")])));
    assert.equal(fieldsOf(r.messages[0]!.body).C, '22021');
  } finally {
    s.sock.destroy();
  }
  const q = recordsOf(g.id, 'pg.query')[0]!;
  assert.deepEqual([...Buffer.from(String(q.data?.sqlBase64), 'base64').subarray(8, 10)], [0xff, 0xfe]);
});

// The splitter trick: with standard_conforming_strings off the server reads '\'' as an escaped
// quote, so the part libpg-query takes for a comment between statements would run.
const HIDDEN_SELECT = "select '\\'; -- '; select body from notes; --\nselect 2";
const HIDDEN_INSERT = "select '\\'; -- '; insert into notes (body) values ('hidden'); --\nselect 2";

test('turning standard_conforming_strings off is refused: denied record, FATAL 42501, the trick never reaches the server', async () => {
  for (const [access, sql] of [['read', HIDDEN_SELECT], ['write', HIDDEN_INSERT]] as const) {
    const g = await grant(f, access);
    const r = await psql(g.env, ['-c', 'set standard_conforming_strings = off', '-c', sql]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /changing standard_conforming_strings is not allowed through airlock/);
    const q = recordsOf(g.id, 'pg.query');
    assert.equal(q.length, 1);
    assert.equal(q[0]!.outcome, 'denied');
    assert.equal(q[0]!.data?.sql, 'set standard_conforming_strings = off');
    const closed = await eventually(() => recordsOf(g.id, 'session.closed')[0], 3000, 'session.closed');
    assert.equal(closed.data?.reason, 'policy');
  }
  const rows = await cluster.sql("select count(*) from notes where body = 'hidden'", 'reporting');
  assert.match(rows, /^\s*0\s*$/m);
  // Other spellings: SET LOCAL, RESET, set_config(), backslash_quote; and at startup (PGOPTIONS).
  for (const sql of ['begin; set local standard_conforming_strings to off', 'reset standard_conforming_strings',
    "select set_config('standard_conforming_strings', 'off', false)", 'set backslash_quote = on']) {
    const g = await grant(f);
    const r = await psql(g.env, ['-c', sql]);
    assert.notEqual(r.code, 0, sql);
    assert.match(r.stderr, /not allowed through airlock/, sql);
    assert.equal(recordsOf(g.id, 'pg.query')[0]?.outcome, 'denied', sql);
  }
  const g = await grant(f);
  const r = await psql({ ...g.env, PGOPTIONS: '-c standard_conforming_strings=off' }, ['-c', 'select 1']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /standard_conforming_strings = off is not allowed through airlock/);
  assert.equal(recordsOf(g.id, 'policy.violation')[0]?.outcome, 'denied');
  // Asking for it on is fine, and reading it is fine.
  const ok = await grant(f);
  const fine = await psql(ok.env, ['-c', 'set standard_conforming_strings = on', '-c', 'show standard_conforming_strings']);
  assert.equal(fine.code, 0, fine.stderr);
  assert.deepEqual(fine.stdout.trim().split('\n'), ['SET', 'on']);
});

test('every record of a split batch carries the whole text as received (the split is only a reading)', async () => {
  const g = await grant(f, 'write');
  const r = await psql(g.env, ['-c', HIDDEN_INSERT]);
  assert.equal(r.code, 0, r.stderr);
  const q = recordsOf(g.id, 'pg.query');
  assert.deepEqual(q.map((x) => x.data?.sql), ["select '\\'", 'select 2']);
  for (const x of q) assert.equal((x.data?.received as { sql?: string } | undefined)?.sql, HIDDEN_INSERT);
});

test('SHOW is recorded with its real row count', async () => {
  const g = await grant(f);
  const r = await psql(g.env, ['-c', 'show timezone', '-c', 'show all']);
  assert.equal(r.code, 0, r.stderr);
  const results = await eventually(() => {
    const res = statementOutcomes(recordsOf(g.id));
    return res.length === 2 ? res : undefined;
  }, 5000, 'two statement outcomes');
  assert.equal(results[0]!.rows, 1);
  assert.ok(Number(results[1]!.rows) > 100, `show all rows: ${String(results[1]!.rows)}`);
  assert.deepEqual(results.map((x) => x.commands), [['SHOW'], ['SHOW']]);
});

test('a change the lexing check cannot see (setting name in a Bind parameter) never runs: the guardrail refuses it, the server report is the backstop', async () => {
  const g = await grant(f);
  const s = await rawSession(f.host, f.port, g);
  try {
    const r = await exchange(s.sock, Buffer.concat([
      msg.parse('', 'select set_config($1, $2, false)'), msg.bindText('', '', ['standard_conforming_strings', 'off']), msg.execute(''), msg.sync(),
      msg.query("select '\\'; -- '; select 1; --\nselect 2"),
    ]), 2);
    assert.equal(r.closed, true, 'the session ends instead of running the next query');
    const fatal = r.messages.find((m) => m.type === 'E');
    assert.ok(fatal, 'a FATAL tells the client why');
    assert.equal(fieldsOf(fatal.body).C, '42501');
    // The guardrail refuses set_config with a setting name it cannot read before it is forwarded;
    // were it forwarded, the server's ParameterStatus would end the session (policy.violation).
    assert.match(fieldsOf(fatal.body).M!, /standard_conforming_strings = off|guardrail "session-role": set_config with a setting name that is not a constant/);
  } finally {
    s.sock.destroy();
  }
  const v = await eventually(() => recordsOf(g.id, 'policy.violation')[0] ?? recordsOf(g.id, 'pg.query').find((x) => x.outcome === 'denied'), 3000, 'the refusal record');
  assert.equal(v.outcome, 'denied');
  const closed = await eventually(() => recordsOf(g.id, 'session.closed')[0], 3000, 'session.closed');
  assert.equal(closed.data?.reason, 'policy');
});

test('the same change through the extended protocol (Parse of SET) is refused before it runs', async () => {
  const g = await grant(f);
  const s = await rawSession(f.host, f.port, g);
  try {
    const r = await exchange(s.sock, Buffer.concat([msg.parse('', 'set standard_conforming_strings = off'), msg.bind('', ''), msg.execute(''), msg.sync()]));
    assert.equal(r.closed, true);
    assert.equal(fieldsOf(r.messages.find((m) => m.type === 'E')!.body).C, '42501');
  } finally {
    s.sock.destroy();
  }
  assert.equal(recordsOf(g.id, 'pg.query')[0]?.outcome, 'denied');
});

test('an Execute whose statement is still open when forwarded is recorded as unconfirmed; its outcome names what ran', async () => {
  const g = await grant(f);
  const s = await rawSession(f.host, f.port, g);
  try {
    // The unnamed Parse sits in an earlier Sync segment: it may or may not succeed.
    const r = await exchange(s.sock, Buffer.concat([msg.parse('', 'select 41 + 1'), msg.sync(), msg.bind('', ''), msg.execute(''), msg.sync()]), 2);
    assert.deepEqual(shape(r.messages), ['1', 'Z', '2', 'D', 'C', 'Z']);
  } finally {
    s.sock.destroy();
  }
  const q = recordsOf(g.id, 'pg.query')[0]!;
  assert.equal(q.data?.sql, null);
  assert.equal(q.data?.prepared, 'unconfirmed');
  const res = await eventually(() => statementOutcomes(recordsOf(g.id))[0], 3000, 'the Execute\'s outcome');
  assert.equal(res.query, q.seq);
  assert.equal(res.sql, 'select 41 + 1');
  assert.equal(res.rows, 1);
});
