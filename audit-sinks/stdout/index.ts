/**
 * Stdout sink: `{ type: stdout }` writes each record's exact line to standard output (for
 * a container's log collector). It cannot read back what it wrote, so across restarts
 * delivery is at-least-once; within one process a re-delivered batch is skipped.
 */
import type { Writable } from 'node:stream';
import { z } from 'zod';
import { defineSink, type AuditSink, type SinkBatch } from '../../core/plugin.ts';

export const stdoutSinkSchema = z.strictObject({ type: z.literal('stdout') });
export type StdoutSinkConfig = z.infer<typeof stdoutSinkSchema>;

export const stdoutSink = defineSink<StdoutSinkConfig>({
  type: 'stdout',
  schema: stdoutSinkSchema,
  maxBatch: 500,
  cursorId: () => 'stdout',
  create: async () => createStreamSink(process.stdout),
});

/** The sink over any writable stream (tests pass their own). The stream is not closed. */
export function createStreamSink(stream: Writable): AuditSink {
  let lastSeq = 0;
  return {
    async deliver(batch: SinkBatch): Promise<void> {
      let skip = 0;
      while (skip < batch.records.length && batch.records[skip]!.seq <= lastSeq) skip++;
      if (skip === batch.records.length) return;
      const text = batch.lines.slice(skip).join('\n') + '\n';
      await new Promise<void>((resolve, reject) => {
        // The callback fires once the stream handed the data on (or failed).
        stream.write(text, (err) => (err ? reject(err) : resolve()));
      });
      lastSeq = batch.records[batch.records.length - 1]!.seq;
    },
  };
}
export default stdoutSink;
