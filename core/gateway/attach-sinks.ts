/** Creates each configured audit sink and attaches it to the pipeline under its cursor id. */
import type { Logger } from 'pino';
import type { RegisteredSink, SinkContext } from '../plugin.ts';
import type { AirlockConfig } from '../config/schema.ts';
import type { AuditPipeline } from '../audit/pipeline.ts';

export async function attachSinks(parts: {
  sinks: readonly RegisteredSink[];
  config: AirlockConfig;
  audit: AuditPipeline;
  context: Omit<SinkContext, 'log'>;
  log: Logger;
}): Promise<void> {
  for (const [index, sinkConfig] of parts.config.audit.sinks.entries()) {
    // The config schema accepted only registered sink types.
    const def = parts.sinks.find((s) => s.type === sinkConfig.type)!;
    const sink = await def.create(sinkConfig, { ...parts.context, log: parts.log.child({ sink: `${sinkConfig.type}#${index}` }) });
    parts.audit.attachSink(def.cursorId(sinkConfig), sink, def.maxBatch, def.lingerMs?.(sinkConfig) ?? 0);
  }
}
