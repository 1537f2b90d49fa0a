/**
 * Load and validate the config. Every error names the file, the line and the key path,
 * and says what was expected: operators fix configs from the message alone.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isNode } from 'yaml';
import type { RegisteredPlugin, RegisteredSink } from '../plugin.ts';
import { buildConfigSchema, type AirlockConfig } from './schema.ts';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface LoadOptions {
  plugins: readonly RegisteredPlugin[];
  sinks: readonly RegisteredSink[];
  env?: NodeJS.ProcessEnv;
}

export function loadConfigFile(path: string, options: LoadOptions): AirlockConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`${path}: cannot read config: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return parseConfigText(text, path, options);
}

export function parseConfigText(text: string, source: string, options: LoadOptions): AirlockConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    const line = err.linePos?.[0]?.line;
    throw new ConfigError(`${source}${line ? ` line ${line}` : ''}: invalid YAML: ${err.message.split('\n')[0]}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  const lineOf = (path: readonly PropertyKey[]): number | undefined => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n) as unknown[], true);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  return validateConfig(raw, source, options, lineOf);
}

/** Validate an already-parsed config object (tests and `airlock dev` build them in code). */
export function validateConfig(
  raw: unknown,
  source: string,
  options: LoadOptions,
  lineOf: (path: readonly PropertyKey[]) => number | undefined = () => undefined,
): AirlockConfig {
  const schema = buildConfigSchema(options.plugins, options.sinks);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    // For an unknown key, point at the key's own line, not its parent's.
    const keyPath = issue.code === 'unrecognized_keys' && issue.keys[0] ? [...issue.path, issue.keys[0]] : issue.path;
    const line = lineOf(keyPath);
    const key = issue.path.map(String).join('.') || '(top level)';
    const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more)` : '';
    throw new ConfigError(`${source}${line ? ` line ${line}` : ''}: ${key}: ${describeIssue(issue)}${more}`);
  }
  const config = parsed.data as unknown as AirlockConfig;
  checkEnvReferences(config, source, options.env ?? process.env, lineOf);
  return config;
}

function describeIssue(issue: { code: string; message: string; keys?: string[] }): string {
  if (issue.code === 'unrecognized_keys' && issue.keys) return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  return issue.message;
}

/** Secrets are never inline: every `…Env` key names an environment variable that must be set. */
function checkEnvReferences(
  value: unknown,
  source: string,
  env: NodeJS.ProcessEnv,
  lineOf: (path: readonly PropertyKey[]) => number | undefined,
  path: PropertyKey[] = [],
): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkEnvReferences(v, source, env, lineOf, [...path, i]));
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const [key, v] of Object.entries(value)) {
    const here = [...path, key];
    if (key.endsWith('Env') && typeof v === 'string' && (env[v] === undefined || env[v] === '')) {
      const line = lineOf(here);
      throw new ConfigError(`${source}${line ? ` line ${line}` : ''}: ${here.join('.')}: environment variable ${v} is not set`);
    }
    checkEnvReferences(v, source, env, lineOf, here);
  }
}
