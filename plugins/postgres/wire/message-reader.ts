/**
 * Pull-style reading of whole messages from a socket, for the short handshake phases
 * (startup, authentication) where clarity matters more than speed. The relay takes over
 * afterwards with `FrameSplitter`, starting from `takeLeftover()`.
 *
 * Bounded: a message larger than `maxBytes` is rejected as soon as its header is seen, and a
 * peer that sends nothing is cut by the caller's timeout, not by this reader.
 */
import type { Duplex } from 'node:stream';
import { AirlockError, ErrorCodes } from '../../../core/errors.ts';
import { ProtocolViolation } from './buffer-reader.ts';

export interface Message {
  /** Type byte, or 0 for an untyped (startup-style) message. */
  type: number;
  body: Buffer;
}

export class MessageReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiting: (() => void) | null = null;
  private ended = false;
  private error: Error | null = null;
  private readonly onData = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.wake();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.wake();
  };
  private readonly onError = (e: Error): void => {
    this.error = e;
    this.wake();
  };

  constructor(
    private readonly socket: Duplex,
    private readonly maxBytes: number,
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = null;
    w?.();
  }

  /** Bytes received but not yet consumed. */
  get pending(): number {
    return this.buffered;
  }

  private async fill(n: number): Promise<void> {
    while (this.buffered < n) {
      if (this.error) throw new AirlockError(ErrorCodes.BAD_REQUEST, `connection error: ${this.error.message}`);
      if (this.ended) throw new PeerClosed();
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks.length > 1 && this.chunks[0]!.length < n) {
      const all = Buffer.concat(this.chunks);
      this.chunks = [all];
    }
    return this.chunks[0]!;
  }

  private take(n: number): Buffer {
    const head = this.peek(n);
    const out = Buffer.from(head.subarray(0, n));
    if (head.length === n) this.chunks.shift();
    else this.chunks[0] = head.subarray(n);
    this.buffered -= n;
    return out;
  }

  /** An untyped message (length + body); body excludes the length. */
  async readUntyped(): Promise<Message> {
    await this.fill(4);
    const length = this.peek(4).readInt32BE(0);
    if (length < 8) throw new ProtocolViolation(`invalid startup packet length ${length}`);
    if (length > this.maxBytes) throw new AirlockError(ErrorCodes.TOO_LARGE, `startup packet of ${length} bytes is too large`);
    await this.fill(length);
    return { type: 0, body: this.take(length).subarray(4) };
  }

  async readTyped(): Promise<Message> {
    await this.fill(5);
    const head = this.peek(5);
    const type = head[0]!;
    const length = head.readInt32BE(1);
    if (length < 4) throw new ProtocolViolation(`invalid message length ${length}`);
    if (length > this.maxBytes) throw new AirlockError(ErrorCodes.TOO_LARGE, `message of ${length} bytes is too large here`);
    await this.fill(length + 1);
    return { type, body: this.take(length + 1).subarray(5) };
  }

  /** Stop listening and return unconsumed bytes (for the next reader of this socket). */
  detach(): Buffer[] {
    // Paused so no chunk is emitted between this reader letting go and the next taking over.
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    const rest = this.chunks;
    this.chunks = [];
    this.buffered = 0;
    return rest;
  }
}

/** The peer closed the connection mid-handshake (not an attack, not worth a FATAL). */
export class PeerClosed extends Error {
  constructor() {
    super('connection closed by peer');
  }
}
