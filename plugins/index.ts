/**
 * The plugin list: one line per resource type. A plugin author adds a folder under
 * plugins/ and one line here; nothing in core changes.
 */
import type { RegisteredPlugin } from '../core/plugin.ts';
import postgres from './postgres/index.ts';
import dynamodb from './dynamodb/index.ts';
import ssm from './ssm/index.ts';
import eks from './eks/index.ts';

export const plugins: readonly RegisteredPlugin[] = [
  postgres,
  dynamodb,
  ssm,
  eks,
];
