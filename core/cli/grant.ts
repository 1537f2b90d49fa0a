import { callGateway, toEnvLines } from './client.ts';
import { CliError } from './errors.ts';
import { parseDuration } from '../config/duration.ts';

export interface GrantCliOptions {
  resource: string | undefined;
  access: string | undefined;
  scope: string | undefined;
  ttl: string | undefined;
  task: string | undefined;
  gateway: string;
  token: string | undefined;
  format: string;
}

/** `--scope tables=orders,customers` style: `k=v` pairs; a key repeated (or `;`-joined values) builds a list. */
export function parseScope(text: string | undefined): Record<string, string[]> | undefined {
  if (!text) return undefined;
  const scope: Record<string, string[]> = {};
  let key: string | undefined;
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) {
      key = part.slice(0, eq).trim();
      (scope[key] ??= []).push(...part.slice(eq + 1).split(';').map((s) => s.trim()).filter(Boolean));
    } else if (key && part.trim()) {
      scope[key]!.push(part.trim());
    } else {
      throw new CliError(`--scope "${text}": expected k=v[,v...][,k=v...]`, 2);
    }
  }
  return scope;
}

export async function runGrant(o: GrantCliOptions): Promise<string> {
  if (!o.resource) throw new CliError('--resource R is required', 2);
  if (!o.access) throw new CliError('--access A is required', 2);
  if (!o.ttl) throw new CliError('--ttl is required (e.g. 5m)', 2);
  if (parseDuration(o.ttl) === undefined) throw new CliError(`--ttl "${o.ttl}" is not a duration like 90s, 15m, 1h`, 2);
  if (!o.task) throw new CliError('--task "why" is required', 2);
  if (o.format !== 'env' && o.format !== 'json') throw new CliError(`--format must be env or json, not "${o.format}"`, 2);
  const scope = parseScope(o.scope);
  const { status, json } = await callGateway(o.gateway, o.token, 'POST', 'v1/grants', { resource: o.resource, access: o.access, ttl: o.ttl, task: o.task, ...(scope ? { scope } : {}) });
  if (status !== 201 && status !== 202) throw new CliError(`grant refused (${status}): ${String(json.error ?? 'unknown error')}`);
  if (o.format === 'json') return JSON.stringify(json, null, 2);
  const connect = json.connect as { env?: Record<string, string> } | undefined;
  const env = { AIRLOCK_GRANT_ID: String(json.id), ...(connect?.env ?? {}) };
  const note = status === 202 ? `# grant ${String(json.id)} is pending approval: it works once an admin approves it\n` : '';
  return note + toEnvLines(env);
}

export async function runRevoke(id: string | undefined, gateway: string, token: string | undefined): Promise<string> {
  if (!id) throw new CliError('usage: airlock revoke GRANT_ID', 2);
  const { status, json } = await callGateway(gateway, token, 'DELETE', `v1/grants/${encodeURIComponent(id)}`);
  if (status !== 200) throw new CliError(`revoke failed (${status}): ${String(json.error ?? 'unknown error')}`);
  return `revoked ${id}`;
}

export async function runApprove(id: string | undefined, gateway: string, token: string | undefined): Promise<string> {
  if (!id) throw new CliError('usage: airlock approve GRANT_ID', 2);
  const { status, json } = await callGateway(gateway, token, 'POST', `v1/grants/${encodeURIComponent(id)}/approve`);
  if (status !== 200) throw new CliError(`approve failed (${status}): ${String(json.error ?? 'unknown error')}`);
  return `approved ${id}: active until ${String(json.expiresAt)}`;
}

export async function runDeny(id: string | undefined, reason: string | undefined, gateway: string, token: string | undefined): Promise<string> {
  if (!id || !reason?.trim()) throw new CliError('usage: airlock deny GRANT_ID --reason "why"', 2);
  const { status, json } = await callGateway(gateway, token, 'POST', `v1/grants/${encodeURIComponent(id)}/deny`, { reason });
  if (status !== 200) throw new CliError(`deny failed (${status}): ${String(json.error ?? 'unknown error')}`);
  return `denied ${id}`;
}
