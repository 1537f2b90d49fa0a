/**
 * A reusable cursor over a region of a Buffer, for parsing one message in place.
 * Every read checks bounds and throws a ProtocolViolation on overrun, so a parser fed a
 * malformed message fails cleanly instead of reading garbage or past the frame.
 */
import { AirlockError, ErrorCodes } from '../../../core/errors.ts';

export class ProtocolViolation extends AirlockError {
  constructor(message: string) {
    super(ErrorCodes.BAD_REQUEST, message);
  }
}

export class BufferReader {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private end = 0;

  /** Point the reader at buf[start, end). Returns this for chaining. */
  reset(buf: Buffer, start = 0, end = buf.length): this {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    return this;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.end) throw new ProtocolViolation(`message too short reading ${what}`);
  }

  byte(): number {
    this.need(1, 'byte');
    return this.buf[this.pos++]!;
  }

  int16(): number {
    this.need(2, 'int16');
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    this.need(4, 'int32');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A NUL-terminated string (UTF-8). */
  cstring(): string {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) throw new ProtocolViolation('unterminated string');
    const s = this.buf.toString('utf8', this.pos, nul);
    this.pos = nul + 1;
    return s;
  }

  /** A NUL-terminated string as a view of its bytes (no decoding, no copy). */
  cstringBytes(): Buffer {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) throw new ProtocolViolation('unterminated string');
    const v = this.buf.subarray(this.pos, nul);
    this.pos = nul + 1;
    return v;
  }

  /** n bytes as a view (no copy): valid only while the underlying buffer is. */
  view(n: number): Buffer {
    this.need(n, `${n} bytes`);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  string(n: number): string {
    this.need(n, `${n} bytes`);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  /** The rest of the region as a view. */
  rest(): Buffer {
    return this.view(this.end - this.pos);
  }

  /** Throw unless the whole region was consumed (catches trailing garbage). */
  done(what: string): void {
    if (this.pos !== this.end) throw new ProtocolViolation(`${what}: ${this.end - this.pos} unexpected trailing bytes`);
  }
}
