/**
 * Grant issuance per second through the control API: `POST /v1/grants` from a few
 * concurrent callers for a fixed time, each answer checked to be a 201 with a secret.
 * A Postgres grant costs a SCRAM verifier (PBKDF2, 4096 rounds) and an audit record; in
 * strict mode the answer also waits for the record's fsync.
 */
import type { GatewayProcess } from '../lib/gateway-process.ts';

export interface GrantRateResult {
  resource: string;
  concurrency: number;
  seconds: number;
  issued: number;
  perSecond: number;
  cpuUsPerGrant: number;
}

export async function measureGrantRate(gw: GatewayProcess, agent: string, body: Record<string, unknown>, o: { concurrency: number; seconds: number }): Promise<GrantRateResult> {
  const token = gw.tokens[agent];
  if (!token) throw new Error(`grants: no token for ${agent}`);
  const request = async () => {
    const res = await fetch(`${gw.url}/v1/grants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as { secret?: string; error?: string };
    if (res.status !== 201 || typeof json.secret !== 'string') throw new Error(`grants: HTTP ${res.status} ${JSON.stringify(json)}`);
  };
  // Warm-up.
  for (let i = 0; i < 20; i++) await request();
  let issued = 0;
  const cpu0 = gw.cpuMicros();
  const started = performance.now();
  const deadline = started + o.seconds * 1000;
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (performance.now() < deadline) {
        await request();
        issued++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = gw.cpuMicros() - cpu0;
  return {
    resource: String(body['resource']),
    concurrency: o.concurrency,
    seconds: Math.round(elapsed * 100) / 100,
    issued,
    perSecond: Math.round((issued / elapsed) * 10) / 10,
    cpuUsPerGrant: Math.round((cpu / issued) * 10) / 10,
  };
}
