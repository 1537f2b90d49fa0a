/** A minimal raw Postgres client for tests that must send exact bytes: frames, and a SCRAM login. */
import { connect, type Socket } from 'node:net';
import { ScramClientExchange } from '../../plugins/postgres/scram/client.ts';

export function typed(type: string | number, body: Buffer): Buffer {
  const out = Buffer.alloc(5);
  out[0] = typeof type === 'string' ? type.charCodeAt(0) : type;
  out.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([out, body]);
}
export function untyped(body: Buffer): Buffer {
  const out = Buffer.alloc(4);
  out.writeInt32BE(body.length + 4, 0);
  return Buffer.concat([out, body]);
}
export const cstr = (s: string) => Buffer.from(s + '\0');
export const i32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n | 0);
  return b;
};
export const i16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};

export function startupFor(user: string): Buffer {
  return untyped(Buffer.concat([i32(196608), cstr('user'), cstr(user), cstr('database'), cstr('reporting'), Buffer.from([0])]));
}

/** Read backend messages until one of `types` arrives. */
export function readUntil(sock: Socket, pred: (type: number, body: Buffer) => boolean): Promise<Array<{ type: number; body: Buffer }>> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const seen: Array<{ type: number; body: Buffer }> = [];
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 5) {
        const len = buf.readInt32BE(1);
        if (buf.length < 1 + len) break;
        const m = { type: buf[0]!, body: buf.subarray(5, 1 + len) };
        buf = buf.subarray(1 + len);
        seen.push(m);
        if (m.type === 0x45 && m.body.includes(Buffer.from('SFATAL'))) return done(new Error(`FATAL during login: ${m.body.toString()}`));
        if (pred(m.type, m.body)) return done(null);
      }
    };
    const onClose = () => done(new Error('closed during login'));
    const done = (e: Error | null) => {
      sock.off('data', onData);
      sock.off('close', onClose);
      if (e) reject(e);
      else resolve(seen);
    };
    sock.on('data', onData);
    sock.on('close', onClose);
  });
}

/** Log in with SCRAM as a real client would; returns a socket in the ready state. */
export async function rawLogin(host: string, port: number, g: { id: string; secret: string }): Promise<Socket> {
  return (await rawSession(host, port, g)).sock;
}

export interface RawSession {
  sock: Socket;
  /** BackendKeyData as the client got it. */
  pid: number;
  key: Buffer;
  /** ParameterStatus values of the greeting. */
  parameters: Map<string, string>;
}

/** rawLogin, keeping what the greeting said; `params` adds startup parameters. */
export async function rawSession(host: string, port: number, g: { id: string; secret: string }, params: Record<string, string> = {}): Promise<RawSession> {
  const sock = await new Promise<Socket>((resolve, reject) => {
    const s = connect({ host, port }, () => resolve(s));
    s.once('error', reject);
  });
  const scram = new ScramClientExchange(g.secret);
  const extra = Object.entries(params).map(([k, v]) => Buffer.concat([cstr(k), cstr(v)]));
  sock.write(untyped(Buffer.concat([i32(196608), cstr('user'), cstr(g.id), cstr('database'), cstr('reporting'), ...extra, Buffer.from([0])])));
  await readUntil(sock, (t, b) => t === 0x52 && b.readInt32BE(0) === 10);
  const first = scram.clientFirstMessage();
  sock.write(typed('p', Buffer.concat([cstr('SCRAM-SHA-256'), i32(first.length), first])));
  const cont = await readUntil(sock, (t, b) => t === 0x52 && b.readInt32BE(0) === 11);
  sock.write(typed('p', await scram.clientFinalMessage(cont.at(-1)!.body.subarray(4))));
  const greeting = await readUntil(sock, (t) => t === 0x5a);
  const k = greeting.find((m) => m.type === 0x4b);
  if (!k) throw new Error('no BackendKeyData');
  const parameters = new Map<string, string>();
  for (const m of greeting.filter((x) => x.type === 0x53)) {
    const [name, value] = m.body.toString('utf8').split('\0');
    parameters.set(name!, value!);
  }
  return { sock, pid: k.body.readInt32BE(0), key: Buffer.from(k.body.subarray(4)), parameters };
}
