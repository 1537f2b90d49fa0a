/** `host:port` ↔ parts, with IPv6 brackets. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(\[([0-9a-fA-F:]+)\]|([^:\s]+)):(\d{1,5})$/.exec(listen);
  if (!m) throw new Error(`invalid listen address "${listen}" (expected host:port)`);
  return { host: m[2] ?? m[3]!, port: Number(m[4]) };
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
