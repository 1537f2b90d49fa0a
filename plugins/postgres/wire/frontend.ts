/**
 * Frontend (client → server) messages: parsers for what airlock receives from clients, and
 * serializers for what airlock sends when it is itself the client of the upstream server.
 * Parsers take a message body region (after type and length) and read it in place.
 */
import { BufferReader, ProtocolViolation } from './buffer-reader.ts';
import { Frontend, RequestCode } from './protocol.ts';
import { Writer } from './writer.ts';

// ---------------------------------------------------------------------------------------
// The untyped first message
// ---------------------------------------------------------------------------------------

export type StartupRequest =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; pid: number; key: Buffer }
  | { kind: 'startup'; major: number; minor: number; params: Map<string, string>; protocolOptions: string[] };

/** Parse the body of an untyped first message (everything after its length). */
export function parseStartupRequest(body: Buffer): StartupRequest {
  const r = new BufferReader().reset(body);
  const code = r.int32();
  if (code === RequestCode.SSL) {
    r.done('SSLRequest');
    return { kind: 'ssl' };
  }
  if (code === RequestCode.GSSENC) {
    r.done('GSSENCRequest');
    return { kind: 'gssenc' };
  }
  if (code === RequestCode.CANCEL) {
    const pid = r.int32();
    // Protocol 3.0 keys are 4 bytes; 3.2 allows up to 256. Keep the bytes as sent.
    const key = Buffer.from(r.rest());
    if (key.length < 4 || key.length > 256) throw new ProtocolViolation('CancelRequest: invalid key length');
    return { kind: 'cancel', pid, key };
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) throw new ProtocolViolation(`unsupported frontend protocol ${major}.${minor}: server supports 3.0`);
  const params = new Map<string, string>();
  const protocolOptions: string[] = [];
  for (;;) {
    const name = r.cstring();
    if (name === '') break;
    const value = r.cstring();
    if (name.startsWith('_pq_.')) protocolOptions.push(name);
    else if (params.has(name)) throw new ProtocolViolation(`startup parameter "${name}" given twice`);
    else params.set(name, value);
  }
  r.done('StartupMessage');
  return { kind: 'startup', major, minor, params, protocolOptions };
}

export function serializeStartup(params: Record<string, string>): Buffer {
  const w = new Writer().untyped().int32(RequestCode.PROTOCOL_3_0);
  for (const [k, v] of Object.entries(params)) w.cstring(k).cstring(v);
  return w.byte(0).end().flush();
}

export function serializeSSLRequest(): Buffer {
  return new Writer(8).untyped().int32(RequestCode.SSL).end().flush();
}

export function serializeCancelRequest(pid: number, key: Buffer): Buffer {
  return new Writer(16).untyped().int32(RequestCode.CANCEL).int32(pid).bytes(key).end().flush();
}

// ---------------------------------------------------------------------------------------
// Authentication ('p')
// ---------------------------------------------------------------------------------------

export function serializePassword(password: string): Buffer {
  return new Writer().message(Frontend.Password).cstring(password).end().flush();
}

export function serializeSASLInitialResponse(mechanism: string, data: Buffer): Buffer {
  return new Writer().message(Frontend.Password).cstring(mechanism).int32(data.length).bytes(data).end().flush();
}

export function serializeSASLResponse(data: Buffer): Buffer {
  return new Writer().message(Frontend.Password).bytes(data).end().flush();
}

export function parseSASLInitialResponse(body: Buffer): { mechanism: string; data: Buffer } {
  const r = new BufferReader().reset(body);
  const mechanism = r.cstring();
  const n = r.int32();
  if (n < 0) throw new ProtocolViolation('SASLInitialResponse: no initial client response');
  const data = Buffer.from(r.view(n));
  r.done('SASLInitialResponse');
  return { mechanism, data };
}

// ---------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------

const reader = new BufferReader();

/** The query text's bytes, undecoded: the session's client_encoding says how to read them. */
export function parseQuery(buf: Buffer, start: number, end: number): Buffer {
  const r = reader.reset(buf, start, end);
  const sql = r.cstringBytes();
  r.done('Query');
  return sql;
}

export function parseParse(buf: Buffer, start: number, end: number): { name: string; sql: Buffer } {
  const r = reader.reset(buf, start, end);
  const name = r.cstring();
  const sql = r.cstringBytes();
  const nTypes = r.int16();
  if (nTypes < 0) throw new ProtocolViolation('Parse: negative parameter type count');
  r.view(nTypes * 4);
  r.done('Parse');
  return { name, sql };
}

export interface BindInfo {
  portal: string;
  statement: string;
  /** Parameters as text (binary ones hex-encoded), only when asked for. */
  params?: (string | null)[];
}

/** Largest parameter value kept in the audit record, in characters. */
const MAX_RECORDED_PARAM = 1024;

export function parseBind(
  buf: Buffer,
  start: number,
  end: number,
  withParams: boolean,
  decodeText: (bytes: Buffer) => string = (b) => b.toString('utf8'),
): BindInfo {
  const r = reader.reset(buf, start, end);
  const portal = r.cstring();
  const statement = r.cstring();
  const nFormats = r.int16();
  if (nFormats < 0) throw new ProtocolViolation('Bind: negative format count');
  const formats: number[] = [];
  for (let i = 0; i < nFormats; i++) formats.push(r.int16());
  const nParams = r.int16();
  if (nParams < 0) throw new ProtocolViolation('Bind: negative parameter count');
  if (nFormats > 1 && nFormats !== nParams) throw new ProtocolViolation('Bind: format count does not match parameter count');
  const params: (string | null)[] | undefined = withParams ? [] : undefined;
  for (let i = 0; i < nParams; i++) {
    const n = r.int32();
    if (n < -1) throw new ProtocolViolation('Bind: invalid parameter length');
    if (n === -1) {
      params?.push(null);
      continue;
    }
    const v = r.view(n);
    if (params) {
      const binary = (nFormats === 1 ? formats[0] : formats[i]) === 1;
      const text = binary ? '\\x' + v.toString('hex') : decodeText(v);
      params.push(text.length > MAX_RECORDED_PARAM ? text.slice(0, MAX_RECORDED_PARAM) + '…' : text);
    }
  }
  const nResult = r.int16();
  if (nResult < 0) throw new ProtocolViolation('Bind: negative result format count');
  r.view(nResult * 2);
  r.done('Bind');
  return params ? { portal, statement, params } : { portal, statement };
}

export function parseExecute(buf: Buffer, start: number, end: number): { portal: string; maxRows: number } {
  const r = reader.reset(buf, start, end);
  const portal = r.cstring();
  const maxRows = r.int32();
  r.done('Execute');
  return { portal, maxRows };
}

/** Close and Describe share a shape: 'S' statement or 'P' portal, and a name. */
export function parseTarget(buf: Buffer, start: number, end: number, what: string): { kind: 'S' | 'P'; name: string } {
  const r = reader.reset(buf, start, end);
  const k = r.byte();
  if (k !== 0x53 && k !== 0x50) throw new ProtocolViolation(`${what}: invalid target type`);
  const name = r.cstring();
  r.done(what);
  return { kind: k === 0x53 ? 'S' : 'P', name };
}

export function parseFunctionCall(buf: Buffer, start: number, end: number): { oid: number } {
  const r = reader.reset(buf, start, end);
  return { oid: r.int32() >>> 0 };
}

export function serializeTerminate(): Buffer {
  return Buffer.from([Frontend.Terminate, 0, 0, 0, 4]);
}
