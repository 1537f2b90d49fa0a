/**
 * Builds protocol messages into one growing buffer. `message(type)` starts a typed
 * message, `untyped()` a startup-style one (no type byte); `end()` patches the length.
 * `flush()` returns everything written so far as one Buffer (a copy, so the writer can be
 * reused) — several messages can be built and sent with a single socket write.
 */
export class Writer {
  private buf: Buffer;
  private pos = 0;
  private lengthAt = -1;

  constructor(initialSize = 256) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  message(type: number): this {
    this.ensure(5);
    this.buf[this.pos++] = type;
    this.lengthAt = this.pos;
    this.pos += 4;
    return this;
  }

  untyped(): this {
    this.ensure(4);
    this.lengthAt = this.pos;
    this.pos += 4;
    return this;
  }

  byte(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v | 0, this.pos);
    this.pos += 4;
    return this;
  }

  cstring(s: string): this {
    const n = Buffer.byteLength(s);
    this.ensure(n + 1);
    this.buf.write(s, this.pos, 'utf8');
    this.pos += n;
    this.buf[this.pos++] = 0;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** Close the current message: its length counts itself and the body, not the type byte. */
  end(): this {
    if (this.lengthAt < 0) throw new Error('Writer.end() without message()');
    this.buf.writeInt32BE(this.pos - this.lengthAt, this.lengthAt);
    this.lengthAt = -1;
    return this;
  }

  flush(): Buffer {
    if (this.lengthAt >= 0) throw new Error('Writer.flush() inside an open message');
    const out = Buffer.from(this.buf.subarray(0, this.pos));
    this.pos = 0;
    return out;
  }
}
