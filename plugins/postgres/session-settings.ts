/**
 * The session settings the server reports (ParameterStatus), as far as the audit depends on
 * them: `client_encoding` says how to read the bytes of statement text for the record, and
 * `standard_conforming_strings` says whether the gateway's SQL lexer (libpg-query, which
 * lexes as the server does with it on) still agrees with the server's.
 *
 * Text is decoded with the session's encoding; when the bytes are not valid in it, or the
 * encoding is one Node cannot decode, or it is not UTF-8 and the text is not plain ASCII
 * (a pipelined `SET client_encoding` may not have been reported yet), the record also keeps
 * the exact bytes as base64, so what was sent is never lost to a decoding guess.
 */
import { isUtf8 } from 'node:buffer';

/** PostgreSQL client encodings → WHATWG TextDecoder labels (Node with full ICU). */
const DECODER_LABELS: Readonly<Record<string, string>> = {
  LATIN2: 'iso-8859-2', LATIN3: 'iso-8859-3', LATIN4: 'iso-8859-4', LATIN5: 'windows-1254',
  LATIN6: 'iso-8859-10', LATIN7: 'iso-8859-13', LATIN8: 'iso-8859-14', LATIN9: 'iso-8859-15',
  ISO_8859_5: 'iso-8859-5', ISO_8859_6: 'iso-8859-6', ISO_8859_7: 'iso-8859-7', ISO_8859_8: 'iso-8859-8',
  WIN866: 'ibm866', WIN874: 'windows-874', WIN1250: 'windows-1250', WIN1251: 'windows-1251',
  WIN1252: 'windows-1252', WIN1253: 'windows-1253', WIN1254: 'windows-1254', WIN1255: 'windows-1255',
  WIN1256: 'windows-1256', WIN1257: 'windows-1257', WIN1258: 'windows-1258',
  KOI8R: 'koi8-r', KOI8U: 'koi8-u', EUC_JP: 'euc-jp', SJIS: 'shift_jis', EUC_KR: 'euc-kr',
  UHC: 'euc-kr', BIG5: 'big5', GBK: 'gbk', GB18030: 'gb18030',
};

/** Statement text as the record holds it. */
export interface RecordedText {
  /** The text as the client meant it (decoded with its client_encoding). */
  sql: string;
  /** The exact bytes, when decoding alone could misrepresent them. */
  sqlBase64?: string;
  /** The client_encoding used, when not UTF8. */
  encoding?: string;
}

type Decode = (bytes: Buffer) => { text: string; exact: boolean };

function decoderFor(encoding: string): Decode {
  const name = encoding.toUpperCase().replace(/[-\s]/g, '_');
  if (name === 'UTF8' || name === 'UTF_8' || name === 'UNICODE') {
    return (b) => ({ text: b.toString('utf8'), exact: isUtf8(b) });
  }
  // LATIN1 is ISO-8859-1 proper (WHATWG's "latin1" label means windows-1252).
  if (name === 'LATIN1' || name === 'ISO_8859_1') return (b) => ({ text: b.toString('latin1'), exact: true });
  const label = DECODER_LABELS[name];
  if (label) {
    const decoder = new TextDecoder(label, { fatal: true });
    const lossy = new TextDecoder(label);
    return (b) => {
      try {
        return { text: decoder.decode(b), exact: true };
      } catch {
        return { text: lossy.decode(b), exact: false };
      }
    };
  }
  // SQL_ASCII (no conversion at all), EUC_CN, EUC_TW, JOHAB, MULE_INTERNAL, …: show UTF-8 if it is, keep the bytes.
  return (b) => ({ text: b.toString('utf8'), exact: false });
}

function isAscii(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]! > 0x7f) return false;
  return true;
}

export class SessionSettings {
  /** Only the two settings the audit depends on are kept (an idle session's memory). */
  private clientEncoding: string | undefined;
  private standardConformingStrings: string | undefined;
  private decode: Decode = decoderFor('UTF8');
  private utf8 = true;

  /** From the greeting's ParameterStatus values. */
  constructor(reported: ReadonlyMap<string, string> = new Map()) {
    for (const [name, value] of reported) this.set(name, value);
  }

  /** A ParameterStatus from the server (greeting or mid-session). */
  set(name: string, value: string): void {
    if (name === 'standard_conforming_strings') this.standardConformingStrings = value;
    else if (name === 'client_encoding') {
      this.clientEncoding = value;
      this.decode = decoderFor(value);
      this.utf8 = /^(UTF8|UTF-8|UNICODE)$/i.test(value);
    }
  }

  /** Statement text for the record, from the exact bytes the client sent. */
  text(bytes: Buffer): RecordedText {
    const { text, exact } = this.decode(bytes);
    if (this.utf8) return exact ? { sql: text } : { sql: text, sqlBase64: bytes.toString('base64') };
    const encoding = this.clientEncoding ?? '?';
    if (exact && isAscii(bytes)) return { sql: text };
    return { sql: text, sqlBase64: bytes.toString('base64'), encoding };
  }

  /** A parameter value as text (only when parameters are recorded). */
  paramText = (bytes: Buffer): string => this.decode(bytes).text;

  /** False when the server would lex SQL differently from the gateway's parser. */
  get lexesLikeGateway(): boolean {
    const scs = this.standardConformingStrings;
    return scs === undefined || scs === 'on';
  }
}
