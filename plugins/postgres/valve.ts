/**
 * Pauses a readable socket for several independent reasons at once (peer's buffer full,
 * waiting for durability) and resumes it only when none is left.
 */
import type { Duplex } from 'node:stream';

export const PauseReason = {
  PeerFull: 1,
  Durable: 2,
} as const;

export class Valve {
  private reasons = 0;

  constructor(private readonly socket: Duplex) {}

  pause(reason: number): void {
    if (this.reasons === 0) this.socket.pause();
    this.reasons |= reason;
  }

  resume(reason: number): void {
    if ((this.reasons & reason) === 0) return;
    this.reasons &= ~reason;
    if (this.reasons === 0) this.socket.resume();
  }
}
