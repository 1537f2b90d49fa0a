/**
 * Splits a byte stream of typed protocol messages (1 type byte + int32 length) into frames,
 * in place: a frame that lies wholly inside a chunk is handed over as a view of that chunk;
 * only a frame split across chunks is copied, and only if its owner wants the body. Bodies
 * the owner does not need (DataRow, CopyData…) are skipped unseen however large they are,
 * so a relay inspecting the stream never buffers more than the messages it parses.
 */
import { AirlockError, ErrorCodes } from '../../../core/errors.ts';
import { ProtocolViolation } from './buffer-reader.ts';

export interface FrameSink {
  /**
   * A frame header: return true to receive its body through `body` (buffered when split),
   * false to skip the body. Throw to reject the stream (unknown type, policy).
   */
  header(type: number, bodyLength: number): boolean;
  /** A wanted frame, body = buf[start, end). The view is valid only during the call. */
  body(type: number, buf: Buffer, start: number, end: number): void;
}

export class FrameSplitter {
  /**
   * A header split across chunks, gathered in numbers rather than a 5-byte buffer: a Buffer
   * and its ArrayBuffer are ~0.2 KiB of heap plus a native backing store, per splitter, two
   * per session, kept for a case that is rare (bench/README.md, ninth pass).
   */
  private hdrLen = 0;
  private hdrType = 0;
  /** The length's bytes so far, big-endian, unsigned until the fourth. */
  private hdrLength = 0;
  private skip = 0;
  private carry: Buffer | null = null;
  private carryLen = 0;
  private carryType = 0;

  constructor(
    private readonly sink: FrameSink,
    /** Largest body accepted; larger frames are rejected with TOO_LARGE before any is buffered. */
    private readonly maxBodyBytes: number,
  ) {}

  /** True between frames (no partial header, body or skip pending). */
  get atBoundary(): boolean {
    return this.hdrLen === 0 && this.skip === 0 && this.carry === null;
  }

  push(chunk: Buffer): void {
    const len = chunk.length;
    let pos = 0;
    while (pos < len) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, len - pos);
        this.skip -= n;
        pos += n;
        continue;
      }
      if (this.carry !== null) {
        const n = Math.min(this.carry.length - this.carryLen, len - pos);
        chunk.copy(this.carry, this.carryLen, pos, pos + n);
        this.carryLen += n;
        pos += n;
        if (this.carryLen === this.carry.length) {
          const body = this.carry;
          this.carry = null; // released before the callback, so an idle connection keeps no buffer
          this.sink.body(this.carryType, body, 0, body.length);
        }
        continue;
      }
      let type: number;
      let length: number;
      if (this.hdrLen === 0 && len - pos >= 5) {
        type = chunk[pos]!;
        length = chunk.readInt32BE(pos + 1);
        pos += 5;
      } else {
        while (this.hdrLen < 5 && pos < len) {
          const byte = chunk[pos++]!;
          if (this.hdrLen === 0) this.hdrType = byte;
          else this.hdrLength = this.hdrLength * 256 + byte;
          this.hdrLen++;
        }
        if (this.hdrLen < 5) break;
        type = this.hdrType;
        length = this.hdrLength | 0; // as readInt32BE reads it: signed
        this.hdrLen = 0;
        this.hdrLength = 0;
      }
      if (length < 4) throw new ProtocolViolation(`invalid message length ${length}`);
      const bodyLength = length - 4;
      if (bodyLength > this.maxBodyBytes) {
        throw new AirlockError(ErrorCodes.TOO_LARGE, `message of ${length} bytes exceeds the limit of ${this.maxBodyBytes}`);
      }
      if (!this.sink.header(type, bodyLength)) {
        this.skip = bodyLength;
        continue;
      }
      if (len - pos >= bodyLength) {
        this.sink.body(type, chunk, pos, pos + bodyLength);
        pos += bodyLength;
      } else {
        this.carry = Buffer.allocUnsafe(bodyLength);
        this.carryType = type;
        this.carryLen = len - pos;
        chunk.copy(this.carry, 0, pos, len);
        pos = len;
      }
    }
  }
}
