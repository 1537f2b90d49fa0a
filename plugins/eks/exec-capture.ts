/**
 * What an exec/attach session said, for the audit: the Kubernetes channel protocols frame
 * every WebSocket message with a stream byte (0 stdin, 1 stdout, 2 stderr, 3 error/status,
 * 4 resize, 255 close-stream in v5). We keep the first bytes of each stream (capped, so a
 * `cat` of a large file cannot flood the audit), count the rest, and read the exit status
 * from the error channel.
 */

export const CHANNEL = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;
/** Bytes of each stream recorded verbatim; beyond this only counted. */
export const STREAM_CAPTURE_CAP = 64 * 1024;

type StreamName = 'stdin' | 'stdout' | 'stderr';

export interface Frame {
  data: Buffer;
  binary: boolean;
}

/** The channel protocols we can read (base64 variants send text frames: digit + base64). */
export function isChannelProtocol(protocol: string): boolean {
  return /^(v[0-9]+\.)?(base64\.)?channel\.k8s\.io$/.test(protocol);
}

export function decodeFrame(frame: Frame, protocol: string): { channel: number; payload: Buffer } | undefined {
  if (frame.data.length === 0) return undefined;
  if (protocol.includes('base64')) {
    const channel = frame.data[0]! - 0x30;
    return { channel, payload: Buffer.from(frame.data.subarray(1).toString('latin1'), 'base64') };
  }
  return { channel: frame.data[0]!, payload: frame.data.subarray(1) };
}

export class ExecCapture {
  readonly bytes = { stdin: 0, stdout: 0, stderr: 0, other: 0 };
  private readonly recorded = { stdin: 0, stdout: 0, stderr: 0 };
  truncated = false;
  exit: Record<string, unknown> | undefined;

  constructor(private readonly protocol: string) {}

  /**
   * The recordable content of a batch of frames in one direction, or undefined when there
   * is nothing to record (empty frames, resize, or past the caps).
   */
  take(frames: readonly Frame[]): Record<string, unknown> | undefined {
    const out: Partial<Record<StreamName, string>> & { resize?: unknown[]; closed?: string[] } = {};
    if (!isChannelProtocol(this.protocol)) {
      // port-forward and unknown protocols: relayed and counted, not read.
      for (const frame of frames) this.bytes.other += frame.data.length;
      return undefined;
    }
    for (const frame of frames) {
      const f = decodeFrame(frame, this.protocol);
      if (!f) continue;
      if (f.channel === CHANNEL.stdin || f.channel === CHANNEL.stdout || f.channel === CHANNEL.stderr) {
        const name: StreamName = f.channel === CHANNEL.stdin ? 'stdin' : f.channel === CHANNEL.stdout ? 'stdout' : 'stderr';
        this.bytes[name] += f.payload.length;
        const room = STREAM_CAPTURE_CAP - this.recorded[name];
        if (room <= 0) {
          if (f.payload.length > 0) this.truncated = true;
          continue;
        }
        const part = f.payload.subarray(0, room);
        if (part.length < f.payload.length) this.truncated = true;
        this.recorded[name] += part.length;
        if (part.length > 0) out[name] = (out[name] ?? '') + part.toString('utf8');
      } else if (f.channel === CHANNEL.error) {
        try {
          const status = JSON.parse(f.payload.toString('utf8')) as Record<string, unknown>;
          this.exit = { status: status['status'], ...(status['reason'] ? { reason: status['reason'] } : {}), ...(status['message'] ? { message: String(status['message']).slice(0, 500) } : {}) };
        } catch {
          this.exit = { raw: f.payload.subarray(0, 500).toString('utf8') };
        }
      } else if (f.channel === CHANNEL.close) {
        (out.closed ??= []).push(f.payload[0] === CHANNEL.stdin ? 'stdin' : String(f.payload[0]));
      }
    }
    if (out.stdin === undefined && out.stdout === undefined && out.stderr === undefined && out.closed === undefined) return undefined;
    return { ...out, ...(this.truncated ? { truncated: true } : {}) };
  }

  summary(): Record<string, unknown> {
    return { bytes: { ...this.bytes }, ...(this.truncated ? { truncated: true } : {}), ...(this.exit ? { exit: this.exit } : {}) };
  }
}

/** A Status on the error channel: how a channel-protocol client learns why it was cut or refused. */
export function statusFrame(protocol: string, status: { message: string; reason: string; code: number }): Buffer | string {
  const body = JSON.stringify({ metadata: {}, status: 'Failure', message: status.message, reason: status.reason, code: status.code });
  if (protocol.includes('base64')) return `${CHANNEL.error}${Buffer.from(body).toString('base64')}`;
  return Buffer.concat([Buffer.from([CHANNEL.error]), Buffer.from(body)]);
}
