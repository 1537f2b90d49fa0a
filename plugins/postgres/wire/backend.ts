/**
 * Backend (server → client) messages: serializers for what airlock says to clients as a
 * server, and parsers for what it reads from the upstream server.
 */
import { BufferReader, ProtocolViolation } from './buffer-reader.ts';
import { AuthCode, Backend } from './protocol.ts';
import { Writer } from './writer.ts';

// ---------------------------------------------------------------------------------------
// Serializers (airlock as the server)
// ---------------------------------------------------------------------------------------

export function serializeAuthSASL(mechanisms: string[]): Buffer {
  const w = new Writer().message(Backend.Authentication).int32(AuthCode.SASL);
  for (const m of mechanisms) w.cstring(m);
  return w.byte(0).end().flush();
}

export function serializeAuthSASLContinue(data: Buffer): Buffer {
  return new Writer().message(Backend.Authentication).int32(AuthCode.SASLContinue).bytes(data).end().flush();
}

export function serializeAuthSASLFinal(data: Buffer): Buffer {
  return new Writer().message(Backend.Authentication).int32(AuthCode.SASLFinal).bytes(data).end().flush();
}

export function serializeAuthOk(): Buffer {
  return new Writer(16).message(Backend.Authentication).int32(AuthCode.Ok).end().flush();
}

export function serializeBackendKeyData(pid: number, key: Buffer): Buffer {
  return new Writer(16).message(Backend.BackendKeyData).int32(pid).bytes(key).end().flush();
}

export function serializeReadyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  return new Writer(8).message(Backend.ReadyForQuery).byte(status.charCodeAt(0)).end().flush();
}

export function serializeNegotiateProtocolVersion(newestMinor: number, unsupportedOptions: string[]): Buffer {
  const w = new Writer().message(Backend.NegotiateProtocolVersion).int32(newestMinor).int32(unsupportedOptions.length);
  for (const o of unsupportedOptions) w.cstring(o);
  return w.end().flush();
}

export interface ErrorFields {
  severity: 'FATAL' | 'ERROR' | 'PANIC' | 'WARNING' | 'NOTICE';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** ErrorResponse (or NoticeResponse): S/V severity, C code, M message, optional D/H. */
export function serializeError(e: ErrorFields, type: number = Backend.ErrorResponse): Buffer {
  const w = new Writer().message(type);
  w.byte(0x53).cstring(e.severity); // S: localized severity
  w.byte(0x56).cstring(e.severity); // V: non-localized severity (9.6+)
  w.byte(0x43).cstring(e.code);
  w.byte(0x4d).cstring(e.message);
  if (e.detail) w.byte(0x44).cstring(e.detail);
  if (e.hint) w.byte(0x48).cstring(e.hint);
  return w.byte(0).end().flush();
}

// ---------------------------------------------------------------------------------------
// Parsers (airlock as the client of upstream, and the relay's inspection)
// ---------------------------------------------------------------------------------------

const reader = new BufferReader();

/** ErrorResponse / NoticeResponse fields by their one-letter codes. */
export function parseErrorFields(buf: Buffer, start: number, end: number): Map<string, string> {
  const r = reader.reset(buf, start, end);
  const fields = new Map<string, string>();
  for (;;) {
    const code = r.byte();
    if (code === 0) break;
    fields.set(String.fromCharCode(code), r.cstring());
  }
  return fields;
}

/** CommandComplete: the tag (e.g. `SELECT 12`, `INSERT 0 3`) and its row count, if any. */
export function parseCommandComplete(buf: Buffer, start: number, end: number): { tag: string; rows: number | undefined } {
  const tag = reader.reset(buf, start, end).cstring();
  const lastSpace = tag.lastIndexOf(' ');
  const n = lastSpace > 0 ? Number(tag.slice(lastSpace + 1)) : NaN;
  return { tag, rows: Number.isInteger(n) ? n : undefined };
}

export type AuthRequest =
  | { code: typeof AuthCode.Ok }
  | { code: typeof AuthCode.CleartextPassword }
  | { code: typeof AuthCode.MD5Password; salt: Buffer }
  | { code: typeof AuthCode.SASL; mechanisms: string[] }
  | { code: typeof AuthCode.SASLContinue; data: Buffer }
  | { code: typeof AuthCode.SASLFinal; data: Buffer }
  | { code: number; unsupported: true };

export function parseAuthRequest(body: Buffer): AuthRequest {
  const r = new BufferReader().reset(body);
  const code = r.int32();
  switch (code) {
    case AuthCode.Ok:
      return { code: AuthCode.Ok };
    case AuthCode.CleartextPassword:
      return { code: AuthCode.CleartextPassword };
    case AuthCode.MD5Password:
      return { code: AuthCode.MD5Password, salt: Buffer.from(r.view(4)) };
    case AuthCode.SASL: {
      const mechanisms: string[] = [];
      for (;;) {
        const m = r.cstring();
        if (m === '') break;
        mechanisms.push(m);
      }
      return { code: AuthCode.SASL, mechanisms };
    }
    case AuthCode.SASLContinue:
      return { code: AuthCode.SASLContinue, data: Buffer.from(r.rest()) };
    case AuthCode.SASLFinal:
      return { code: AuthCode.SASLFinal, data: Buffer.from(r.rest()) };
    default:
      return { code, unsupported: true };
  }
}

export function parseBackendKeyData(body: Buffer): { pid: number; key: Buffer } {
  const r = new BufferReader().reset(body);
  const pid = r.int32();
  // Kept for the session's whole life: an owned copy (Buffer.alloc is never a slice of the
  // shared 8 KiB pool, which a long-lived slice would keep alive in full).
  const rest = r.rest();
  const key = Buffer.alloc(rest.length);
  rest.copy(key);
  if (key.length < 4) throw new ProtocolViolation('BackendKeyData: key too short');
  return { pid, key };
}

export function parseReadyForQuery(buf: Buffer, start: number, end: number): number {
  const r = reader.reset(buf, start, end);
  const status = r.byte();
  r.done('ReadyForQuery');
  return status;
}

export function parseParameterStatus(buf: Buffer, start: number, end: number): { name: string; value: string } {
  const r = reader.reset(buf, start, end);
  const name = r.cstring();
  const value = r.cstring();
  r.done('ParameterStatus');
  return { name, value };
}

/** An ErrorResponse rebuilt from its fields, in the server's order, with extra fields added. */
export function serializeErrorFields(fields: ReadonlyMap<string, string>): Buffer {
  const w = new Writer().message(Backend.ErrorResponse);
  for (const [code, value] of fields) w.byte(code.charCodeAt(0)).cstring(value);
  return w.byte(0).end().flush();
}
