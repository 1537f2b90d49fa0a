/**
 * Several replicas' audit files given at once: each replica keeps its own hash chain (its
 * gateway id), so the files are sorted into chains before verifying. A file names its
 * chain in a `gateway.started` record (data.gatewayId) or a checkpoint's signed payload
 * (read here without verifying: the verification of that chain checks the signature and
 * that every checkpoint is from the chain's gateway). Files that name none form one group.
 */
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { createInterface } from 'node:readline';

export const UNNAMED_CHAIN = '';

export async function groupByChain(files: readonly string[]): Promise<Map<string, string[]>> {
  const groups = new Map<string, string[]>();
  for (const file of files) {
    const id = await chainOf(file);
    const list = groups.get(id) ?? [];
    list.push(file);
    groups.set(id, list);
  }
  return groups;
}

async function chainOf(file: string): Promise<string> {
  let input: NodeJS.ReadableStream;
  try {
    const raw = createReadStream(file);
    input = file.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
  } catch {
    return UNNAMED_CHAIN;
  }
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      const id = gatewayIdOf(line);
      if (id !== undefined) return id;
    }
  } catch {
    // Unreadable here: the verification reports it properly.
  } finally {
    lines.close();
  }
  return UNNAMED_CHAIN;
}

function gatewayIdOf(line: string): string | undefined {
  if (!line.includes('"gateway.started"') && !line.includes('"checkpoint"')) return undefined;
  let rec: { type?: unknown; data?: { gatewayId?: unknown; jws?: unknown } };
  try {
    rec = JSON.parse(line) as typeof rec;
  } catch {
    return undefined;
  }
  if (rec.type === 'gateway.started' && typeof rec.data?.gatewayId === 'string') return rec.data.gatewayId;
  if (rec.type === 'checkpoint' && typeof rec.data?.jws === 'string') {
    const payload = rec.data.jws.split('.')[1];
    if (!payload) return undefined;
    try {
      const p = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { gatewayId?: unknown };
      return typeof p.gatewayId === 'string' ? p.gatewayId : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}
