/** Test helpers: hand-built protocol messages and a reader that collects backend messages up to a number of ReadyForQuery. */
import type { Socket } from 'node:net';
import { cstr, i16, i32, typed } from './raw-client.ts';

export interface BackendMessage {
  type: string;
  body: Buffer;
}

export const msg = {
  query: (sql: string | Buffer) => typed('Q', Buffer.concat([typeof sql === 'string' ? Buffer.from(sql) : sql, Buffer.from([0])])),
  parse: (name: string, sql: string) => typed('P', Buffer.concat([cstr(name), cstr(sql), i16(0)])),
  bind: (portal: string, statement: string) => typed('B', Buffer.concat([cstr(portal), cstr(statement), i16(0), i16(0), i16(0)])),
  /** Bind with text parameters. */
  bindText: (portal: string, statement: string, params: string[]) =>
    typed('B', Buffer.concat([cstr(portal), cstr(statement), i16(0), i16(params.length), ...params.map((v) => Buffer.concat([i32(Buffer.byteLength(v)), Buffer.from(v)])), i16(0)])),
  describe: (kind: 'S' | 'P', name: string) => typed('D', Buffer.concat([Buffer.from(kind), cstr(name)])),
  execute: (portal: string, maxRows = 0) => typed('E', Buffer.concat([cstr(portal), i32(maxRows)])),
  close: (kind: 'S' | 'P', name: string) => typed('C', Buffer.concat([Buffer.from(kind), cstr(name)])),
  sync: () => typed('S', Buffer.alloc(0)),
  flush: () => typed('H', Buffer.alloc(0)),
  copyData: (data: string) => typed('d', Buffer.from(data)),
  copyDone: () => typed('c', Buffer.alloc(0)),
  copyFail: (why: string) => typed('f', cstr(why)),
};

/** Send `bytes`, then collect every backend message until `readies` ReadyForQuery (or the socket closes). */
export function exchange(sock: Socket, bytes: Buffer, readies = 1, timeoutMs = 30_000): Promise<{ messages: BackendMessage[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const messages: BackendMessage[] = [];
    let seen = 0;
    const timer = setTimeout(() => finish(new Error(`timed out; got ${messages.map((m) => m.type).join('')}`)), timeoutMs);
    const onData = (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 5) {
        const len = buf.readInt32BE(1);
        if (buf.length < 1 + len) break;
        messages.push({ type: String.fromCharCode(buf[0]!), body: Buffer.from(buf.subarray(5, 1 + len)) });
        buf = buf.subarray(1 + len);
        if (messages.at(-1)!.type === 'Z' && ++seen === readies) return finish(null);
      }
    };
    const onClose = () => finish(null, true);
    const finish = (e: Error | null, closed = false) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
      if (e) reject(e);
      else resolve({ messages, closed });
    };
    sock.on('data', onData);
    sock.on('close', onClose);
    if (bytes.length) sock.write(bytes);
  });
}

/** ErrorResponse / NoticeResponse fields by code letter. */
export function fieldsOf(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < body.length && body[pos] !== 0) {
    const code = String.fromCharCode(body[pos]!);
    const end = body.indexOf(0, pos + 1);
    out[code] = body.toString('utf8', pos + 1, end);
    pos = end + 1;
  }
  return out;
}

/** A readable rendering of a message stream: type letters, with error codes. */
export function shape(messages: BackendMessage[]): string[] {
  return messages.map((m) => (m.type === 'E' || m.type === 'N' ? `${m.type}:${fieldsOf(m.body).C}` : m.type));
}
