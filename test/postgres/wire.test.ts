/**
 * Unit tests of the wire layer and SCRAM: the frame splitter on every possible chunking, size
 * limits, parsers on malformed input, and SCRAM-SHA-256 against the RFC 7677 test vector and
 * against itself (client ↔ server), including the constant-time rejection of a wrong password.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { FrameSplitter, type FrameSink } from '../../plugins/postgres/wire/frame-splitter.ts';
import { Writer } from '../../plugins/postgres/wire/writer.ts';
import { parseBind, parseStartupRequest } from '../../plugins/postgres/wire/frontend.ts';
import { parseCommandComplete } from '../../plugins/postgres/wire/backend.ts';
import { ScramServerExchange } from '../../plugins/postgres/scram/server.ts';
import { ScramClientExchange } from '../../plugins/postgres/scram/client.ts';
import { isAirlockError } from '../../core/errors.ts';

function collectingSink(want: (type: number) => boolean) {
  const seen: Array<{ type: number; body: string | null }> = [];
  const sink: FrameSink = {
    header: (type) => {
      if (!want(type)) seen.push({ type, body: null });
      return want(type);
    },
    body: (type, buf, start, end) => void seen.push({ type, body: buf.toString('latin1', start, end) }),
  };
  return { sink, seen };
}

test('frame splitter yields the same frames for every way of cutting the stream', () => {
  const w = new Writer();
  w.message(0x51).cstring('select 1').end();
  w.message(0x44).bytes(Buffer.alloc(300, 7)).end(); // skipped body
  w.message(0x53).end(); // empty body
  w.message(0x50).cstring('').cstring('select $1').int16(0).end();
  const stream = w.flush();
  const want = (t: number) => t !== 0x44;
  const whole = collectingSink(want);
  new FrameSplitter(whole.sink, 1 << 20).push(stream);
  assert.equal(whole.seen.length, 4);
  assert.deepEqual(whole.seen.map((s) => s.type), [0x51, 0x44, 0x53, 0x50]);
  for (let a = 1; a < stream.length; a += 7) {
    for (let b = a; b < stream.length; b += 13) {
      const c = collectingSink(want);
      const splitter = new FrameSplitter(c.sink, 1 << 20);
      splitter.push(stream.subarray(0, a));
      splitter.push(stream.subarray(a, b));
      splitter.push(stream.subarray(b));
      assert.deepEqual(c.seen, whole.seen, `cut at ${a},${b}`);
      assert.equal(splitter.atBoundary, true);
    }
  }
  // Byte by byte.
  const c = collectingSink(want);
  const s = new FrameSplitter(c.sink, 1 << 20);
  for (let i = 0; i < stream.length; i++) s.push(stream.subarray(i, i + 1));
  assert.deepEqual(c.seen, whole.seen);
});

test('frame splitter rejects bad lengths and oversized frames before buffering them', () => {
  const { sink } = collectingSink(() => true);
  assert.throws(() => new FrameSplitter(sink, 100).push(Buffer.from([0x51, 0, 0, 0, 3])), /invalid message length/);
  const big = Buffer.from([0x51, 0, 0, 0x10, 0]);
  assert.throws(() => new FrameSplitter(sink, 100).push(big), (e: unknown) => isAirlockError(e, 'TOO_LARGE'));
  // The same checks when the header arrives a byte at a time (gathered without a buffer): the
  // length is signed, as on the wire, so 0xffffffff is -1, not 4 GiB.
  const byteByByte = (bytes: number[]) => () => {
    const splitter = new FrameSplitter(sink, 100);
    for (const b of bytes) splitter.push(Buffer.from([b]));
  };
  assert.throws(byteByByte([0x51, 0xff, 0xff, 0xff, 0xff]), /invalid message length -1/);
  assert.throws(byteByByte([0x51, 0, 0, 0, 3]), /invalid message length 3/);
  assert.throws(byteByByte([...big]), (e: unknown) => isAirlockError(e, 'TOO_LARGE'));
});

test('startup and bind parsers reject malformed input with protocol errors', () => {
  assert.throws(() => parseStartupRequest(Buffer.from([0, 3, 0, 0, 0x75])), /unterminated/);
  assert.throws(() => parseStartupRequest(Buffer.from([0, 2, 0, 0, 0])), /unsupported frontend protocol 2.0/);
  const ok = parseStartupRequest(Buffer.concat([Buffer.from([0, 3, 0, 0]), Buffer.from('user\0AG1\0database\0db\0_pq_.x\0y\0\0')]));
  assert.equal(ok.kind, 'startup');
  if (ok.kind === 'startup') {
    assert.equal(ok.params.get('user'), 'AG1');
    assert.deepEqual(ok.protocolOptions, ['_pq_.x']);
  }
  const bind = new Writer().message(0x42).cstring('p').cstring('s').int16(1).int16(1).int16(2).int32(2).bytes(Buffer.from([1, 2])).int32(-1).int16(0).end().flush();
  assert.deepEqual(parseBind(bind, 5, bind.length, true), { portal: 'p', statement: 's', params: ['\\x0102', null] });
  const bad = new Writer().message(0x42).cstring('').cstring('').int16(0).int16(1).int32(50).end().flush();
  assert.throws(() => parseBind(bad, 5, bad.length, false), /too short/);
  const tag = Buffer.from('INSERT 0 42\0');
  assert.deepEqual(parseCommandComplete(tag, 0, tag.length), { tag: 'INSERT 0 42', rows: 42 });
});

function verifierFor(password: string, salt: Buffer, iterations: number) {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return {
    salt,
    iterations,
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: createHmac('sha256', salted).update('Server Key').digest(),
  };
}

test('SCRAM server accepts the RFC 7677 example exchange', () => {
  // RFC 7677 §3: user "user", password "pencil".
  const v = verifierFor('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096);
  const server = new ScramServerExchange(v);
  const first = server.serverFirstMessage(Buffer.from('n,,n=user,r=rOprNGfwEbeRWgbNEkqO')).toString();
  const m = /^r=(rOprNGfwEbeRWgbNEkqO[^,]+),s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096$/.exec(first);
  assert.ok(m, first);
  // The RFC's proof is bound to its own server nonce; recompute it for ours, as the client would.
  const nonce = m[1]!;
  const salted = pbkdf2Sync('pencil', v.salt, 4096, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const authMessage = `n=user,r=rOprNGfwEbeRWgbNEkqO,${first},c=biws,r=${nonce}`;
  const sig = createHmac('sha256', v.storedKey).update(authMessage).digest();
  const proof = Buffer.from(clientKey.map((b, i) => b ^ sig[i]!));
  const final = server.verifyClientFinal(Buffer.from(`c=biws,r=${nonce},p=${proof.toString('base64')}`));
  const expected = createHmac('sha256', v.serverKey).update(authMessage).digest('base64');
  assert.equal(final?.toString(), `v=${expected}`);
});

test('SCRAM client and server agree; a wrong password yields null, a tampered nonce throws', async () => {
  const v = verifierFor('s3cret', Buffer.from('0123456789abcdef'), 4096);
  for (const [password, ok] of [['s3cret', true], ['s3cres', false]] as const) {
    const server = new ScramServerExchange(v);
    const client = new ScramClientExchange(password);
    const sFirst = server.serverFirstMessage(client.clientFirstMessage());
    const cFinal = await client.clientFinalMessage(sFirst);
    const sFinal = server.verifyClientFinal(cFinal);
    assert.equal(sFinal !== null, ok);
    if (sFinal) client.verifyServerFinal(sFinal);
  }
  const server = new ScramServerExchange(v);
  const client = new ScramClientExchange('s3cret');
  const sFirst = server.serverFirstMessage(client.clientFirstMessage());
  const cFinal = (await client.clientFinalMessage(sFirst)).toString().replace(/r=([^,]+)/, 'r=$1x');
  assert.throws(() => server.verifyClientFinal(Buffer.from(cFinal)), /nonce/);
  assert.throws(() => new ScramServerExchange(v).serverFirstMessage(Buffer.from('p=tls-server-end-point,,n=,r=abc')), /channel binding/);
});

test('tls-server-end-point hashes the certificate with its signature hash (SHA-256 for EC P-256/SHA-256, SHA-384 for RSA/SHA-384)', async () => {
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { X509Certificate } = await import('node:crypto');
  const { tlsServerEndPoint, endPointHashName } = await import('../../plugins/postgres/scram/channel-binding.ts');
  const dir = mkdtempSync(join(tmpdir(), 'cb-'));
  try {
    const make = (name: string, args: string[]) => {
      execFileSync('openssl', ['req', '-x509', ...args, '-nodes', '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`), '-days', '1', '-subj', '/CN=cb'], { stdio: 'ignore' });
      return new X509Certificate(readFileSync(join(dir, `${name}.crt`))).raw;
    };
    const ec = make('ec', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-sha256']);
    const rsa = make('rsa', ['-newkey', 'rsa:2048', '-sha384']);
    assert.equal(endPointHashName(ec), 'sha256');
    assert.equal(endPointHashName(rsa), 'sha384');
    assert.deepEqual(tlsServerEndPoint(ec), createHash('sha256').update(ec).digest());
    assert.deepEqual(tlsServerEndPoint(rsa), createHash('sha384').update(rsa).digest());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SCRAM server: channel-binding flags must match the mechanism and the offer (downgrade refused)', () => {
  const salt = Buffer.from('salt');
  const salted = pbkdf2Sync('pw', salt, 4096, 32, 'sha256');
  const verifier = {
    salt, iterations: 4096,
    storedKey: createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest(),
    serverKey: createHmac('sha256', salted).update('Server Key').digest(),
  };
  const endPoint = Buffer.alloc(32, 1);
  const first = (gs2: string) => Buffer.from(`${gs2}n=*,r=abc`);
  // Over TLS PLUS was offered: a client saying "y" (could bind, saw no offer) was downgraded.
  assert.throws(() => new ScramServerExchange(verifier, { mechanism: 'SCRAM-SHA-256', endPoint }).serverFirstMessage(first('y,,')), /offered/);
  assert.throws(() => new ScramServerExchange(verifier, { mechanism: 'SCRAM-SHA-256', endPoint }).serverFirstMessage(first('p=tls-server-end-point,,')), /PLUS/);
  assert.throws(() => new ScramServerExchange(verifier, { mechanism: 'SCRAM-SHA-256-PLUS', endPoint }).serverFirstMessage(first('n,,')), /tls-server-end-point/);
  assert.throws(() => new ScramServerExchange(verifier, { mechanism: 'SCRAM-SHA-256-PLUS', endPoint: null }).serverFirstMessage(first('p=tls-server-end-point,,')), /not offered/);
  // Without TLS, "y" is the honest answer of a client that could bind.
  assert.ok(new ScramServerExchange(verifier, { mechanism: 'SCRAM-SHA-256', endPoint: null }).serverFirstMessage(first('y,,')).length > 0);
  // PLUS: the client-final's c= must carry gs2 header + end-point hash.
  const plus = new ScramServerExchange(verifier, { mechanism: 'SCRAM-SHA-256-PLUS', endPoint });
  const serverFirst = plus.serverFirstMessage(first('p=tls-server-end-point,,')).toString();
  const nonce = serverFirst.split(',')[0]!.slice(2);
  const wrong = Buffer.from(`c=${Buffer.from('p=tls-server-end-point,,').toString('base64')},r=${nonce},p=${Buffer.alloc(32).toString('base64')}`);
  assert.throws(() => plus.verifyClientFinal(wrong), /channel binding does not match/);
});
