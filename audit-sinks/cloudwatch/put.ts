/**
 * One PutLogEvents call, with the service's failure forms handled:
 * - throttling / unavailable: jittered exponential back-off (on top of the SDK's own
 *   retries), then give up so the runner backs off the whole batch;
 * - InvalidSequenceTokenException (services that still enforce tokens): retry with the
 *   token the error names;
 * - DataAlreadyAcceptedException: that exact call was stored before → success;
 * - events accepted by the call but reported in `rejectedLogEventsInfo` (too old, expired
 *   by retention, too new) are NOT stored: put them again stamped with the current time;
 *   if the service still rejects them, fail loudly rather than lose them quietly.
 */
import { PutLogEventsCommand, type CloudWatchLogsClient, type RejectedLogEventsInfo } from '@aws-sdk/client-cloudwatch-logs';
import { AirlockError } from '../../core/errors.ts';
import type { LogEvent } from './events.ts';

export type LogsSender = Pick<CloudWatchLogsClient, 'send'>;

export interface StreamState {
  logGroupName: string;
  logStreamName: string;
  sequenceToken: string | undefined;
  /** Highest timestamp written so far (events must never go back in time). */
  lastTimestamp: number;
}

const THROTTLE_RETRIES = 4;
const BACKOFF_BASE_MS = 200;
const BACKOFF_CAP_MS = 5_000;
const TOKEN_RETRIES = 3;

function errorName(e: unknown): string {
  return e instanceof Error ? e.name : '';
}

function isThrottle(e: unknown): boolean {
  const name = errorName(e);
  const retryable = (e as { $retryable?: { throttling?: boolean } } | null)?.$retryable;
  return name === 'ThrottlingException' || name === 'ServiceUnavailableException' || retryable?.throttling === true;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** "Full jitter": a random wait up to the exponential bound, so many gateways spread out. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt));
}

/** Indexes of the call's events the service did not store. */
export function rejectedIndexes(info: RejectedLogEventsInfo | undefined, count: number): number[] {
  if (!info) return [];
  const out: number[] = [];
  const oldEnd = Math.max(info.tooOldLogEventEndIndex ?? -1, info.expiredLogEventEndIndex ?? -1);
  const newStart = info.tooNewLogEventStartIndex ?? count;
  for (let i = 0; i < count; i++) if (i <= oldEnd || i >= newStart) out.push(i);
  return out;
}

async function sendOnce(client: LogsSender, state: StreamState, events: readonly LogEvent[]): Promise<RejectedLogEventsInfo | undefined> {
  let tokenRetries = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      const out = await client.send(
        new PutLogEventsCommand({
          logGroupName: state.logGroupName,
          logStreamName: state.logStreamName,
          logEvents: events.map((e) => ({ timestamp: e.timestamp, message: e.message })),
          ...(state.sequenceToken === undefined ? {} : { sequenceToken: state.sequenceToken }),
        }),
      );
      state.sequenceToken = out.nextSequenceToken;
      return out.rejectedLogEventsInfo;
    } catch (e) {
      const name = errorName(e);
      if (name === 'DataAlreadyAcceptedException') {
        state.sequenceToken = (e as { expectedSequenceToken?: string }).expectedSequenceToken;
        return undefined;
      }
      if (name === 'InvalidSequenceTokenException' && tokenRetries < TOKEN_RETRIES) {
        tokenRetries += 1;
        state.sequenceToken = (e as { expectedSequenceToken?: string }).expectedSequenceToken;
        continue;
      }
      if (isThrottle(e) && attempt < THROTTLE_RETRIES) {
        await sleep(backoffMs(attempt));
        continue;
      }
      throw e;
    }
  }
}

export async function putEvents(client: LogsSender, state: StreamState, events: readonly LogEvent[], now: () => number = Date.now): Promise<void> {
  if (events.length === 0) return;
  const rejected = rejectedIndexes(await sendOnce(client, state, events), events.length);
  for (const e of events) state.lastTimestamp = Math.max(state.lastTimestamp, e.timestamp);
  if (rejected.length === 0) return;

  const retryAt = Math.max(now(), state.lastTimestamp);
  const again = rejected.map((i) => ({ ...(events[i] as LogEvent), timestamp: retryAt }));
  const stillRejected = rejectedIndexes(await sendOnce(client, state, again), again.length);
  state.lastTimestamp = Math.max(state.lastTimestamp, retryAt);
  if (stillRejected.length > 0) {
    const seqs = stillRejected.map((i) => (again[i] as LogEvent).seq);
    throw new AirlockError(
      'UPSTREAM_FAILED',
      `cloudwatch sink: ${state.logGroupName}/${state.logStreamName} rejected events of seq ${Math.min(...seqs)}..${Math.max(...seqs)} even stamped with the current time (clock skew?)`,
    );
  }
}
