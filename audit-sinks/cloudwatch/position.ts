/**
 * How far a log stream got: the highest (seq, part) among its newest events. Read on the
 * first delivery and again after any failed call (a timeout may have stored the events
 * anyway), so a retried batch skips what the stream already holds: exactly-once per seq as
 * long as reads see recent writes (CloudWatch Logs may take a moment to show an event;
 * the runner's back-off before a retry gives it that moment, and a duplicate is the worst
 * case, never a gap).
 *
 * We read the newest TAIL_EVENTS events, not just one, because several events can share a
 * timestamp and the newest-by-time event is then not necessarily the highest seq.
 */
import {
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  GetLogEventsCommand,
  type CloudWatchLogsClient,
} from '@aws-sdk/client-cloudwatch-logs';
import { AirlockError } from '../../core/errors.ts';
import { positionOf, isAfter, type StreamPosition } from './events.ts';

export const EMPTY_STREAM: StreamPosition = { seq: -1, part: 0 };
const TAIL_EVENTS = 50;
/** An empty page with a new token can precede the events; follow a few. */
const MAX_PAGES = 5;

export interface StreamTail {
  position: StreamPosition;
  lastTimestamp: number;
  /** Newest events whose message is not an airlock record (someone else writes here). */
  foreign: number;
}

function errorName(e: unknown): string {
  return e instanceof Error ? e.name : '';
}

export async function readTail(client: Pick<CloudWatchLogsClient, 'send'>, logGroupName: string, logStreamName: string): Promise<StreamTail> {
  const tail: StreamTail = { position: EMPTY_STREAM, lastTimestamp: 0, foreign: 0 };
  let nextToken: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const out = await client.send(
      new GetLogEventsCommand({ logGroupName, logStreamName, startFromHead: false, limit: TAIL_EVENTS, ...(nextToken ? { nextToken } : {}) }),
    );
    const events = out.events ?? [];
    for (const event of events) {
      tail.lastTimestamp = Math.max(tail.lastTimestamp, event.timestamp ?? 0);
      const position = event.message === undefined ? undefined : positionOf(event.message);
      if (!position) tail.foreign += 1;
      else if (isAfter(position, tail.position)) tail.position = position;
    }
    if (events.length > 0 || !out.nextBackwardToken || out.nextBackwardToken === nextToken) break;
    nextToken = out.nextBackwardToken;
  }
  return tail;
}

/**
 * Create the group and the stream if missing. ResourceAlreadyExists is fine; so is being
 * denied CreateLogGroup when the group exists already (a narrow policy may allow only the
 * stream).
 */
export async function ensureStream(client: Pick<CloudWatchLogsClient, 'send'>, logGroupName: string, logStreamName: string): Promise<void> {
  try {
    await client.send(new CreateLogGroupCommand({ logGroupName }));
  } catch (e) {
    const name = errorName(e);
    if (name !== 'ResourceAlreadyExistsException' && name !== 'AccessDeniedException' && name !== 'AccessDenied') throw e;
  }
  try {
    await client.send(new CreateLogStreamCommand({ logGroupName, logStreamName }));
  } catch (e) {
    if (errorName(e) !== 'ResourceAlreadyExistsException') throw e;
  }
}

/** The stream's tail, creating group and stream first when allowed and missing. */
export async function locateStream(
  client: Pick<CloudWatchLogsClient, 'send'>,
  target: { logGroupName: string; logStreamName: string; create: boolean },
): Promise<StreamTail> {
  try {
    return await readTail(client, target.logGroupName, target.logStreamName);
  } catch (e) {
    if (errorName(e) !== 'ResourceNotFoundException') throw e;
    if (!target.create) {
      throw new AirlockError(
        'UPSTREAM_FAILED',
        `cloudwatch sink: log group ${target.logGroupName} or stream ${target.logStreamName} does not exist and create is false`,
        { cause: e },
      );
    }
  }
  await ensureStream(client, target.logGroupName, target.logStreamName);
  // Read again: the stream may have existed after all (created meanwhile, or only the group was missing).
  return readTail(client, target.logGroupName, target.logStreamName);
}
