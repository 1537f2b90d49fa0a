/**
 * The sink list: one line per sink type. A sink author adds a folder under audit-sinks/
 * and one line here.
 */
import type { RegisteredSink } from '../core/plugin.ts';
import s3 from './s3/index.ts';
import cloudwatch from './cloudwatch/index.ts';
import file from './file/index.ts';
import stdout from './stdout/index.ts';

export const sinks: readonly RegisteredSink[] = [
  s3,
  cloudwatch,
  file,
  stdout,
];
