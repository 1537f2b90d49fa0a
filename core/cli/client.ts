/** The control-API client behind `airlock grant` and `airlock revoke`. */
import { CliError } from './errors.ts';

export async function callGateway(gateway: string, token: string | undefined, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  if (!token) throw new CliError('no identity token: pass --token JWT or set AIRLOCK_TOKEN (mint one with `airlock token --agent NAME`)', 2);
  let url: URL;
  try {
    url = new URL(path, gateway.endsWith('/') ? gateway : `${gateway}/`);
  } catch {
    throw new CliError(`--gateway "${gateway}" is not a URL`, 2);
  }
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : null,
    });
  } catch (e) {
    throw new CliError(`cannot reach the gateway at ${url.origin}: ${(e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message}`);
  }
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { error: text.slice(0, 200) };
  }
  return { status: res.status, json };
}

/** `export K='V'` lines, single-quoted so no value is ever interpreted by the shell. */
export function toEnvLines(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => `export ${k}='${v.replaceAll("'", `'\\''`)}'`)
    .join('\n');
}
