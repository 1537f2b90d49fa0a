/**
 * The official MCP clients of both SDK lines, each connected over Streamable HTTP with an
 * agent's bearer token: `@modelcontextprotocol/sdk` 1.x (2025-11-25 handshake),
 * `@modelcontextprotocol/client` 2.x in its default legacy mode, and 2.x pinned to 2026-07-28.
 */
import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as Transport1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as Client2, StreamableHTTPClientTransport as Transport2 } from '@modelcontextprotocol/client';

export type ClientLine = 'sdk-1.x' | 'client-2.x-legacy' | 'client-2.x-2026-07-28';
export const CLIENT_LINES: readonly ClientLine[] = ['sdk-1.x', 'client-2.x-legacy', 'client-2.x-2026-07-28'];

export interface CallOutcome {
  isError: boolean;
  text: string;
  structured: Record<string, unknown>;
}

export interface McpTestClient {
  readonly line: ClientLine;
  protocolVersion(): string | undefined;
  listTools(): Promise<{ name: string; description?: string | undefined; inputSchema: unknown }[]>;
  call(name: string, args: Record<string, unknown>): Promise<CallOutcome>;
  close(): Promise<void>;
}

/** 1.x keeps the negotiated revision on its transport. */
function transportVersion(client: Client1): string | undefined {
  const transport = client.transport as { protocolVersion?: string } | undefined;
  return transport?.protocolVersion;
}

function outcome(r: { isError?: unknown; content?: unknown; structuredContent?: unknown }): CallOutcome {
  const content = Array.isArray(r.content) ? (r.content as { type: string; text?: string }[]) : [];
  return {
    isError: r.isError === true,
    text: content.map((c) => c.text ?? '').join('\n'),
    structured: (r.structuredContent ?? {}) as Record<string, unknown>,
  };
}

export async function connectClient(line: ClientLine, url: string, token: string): Promise<McpTestClient> {
  const requestInit = { headers: { authorization: `Bearer ${token}` } };
  const info = { name: `airlock-test-${line}`, version: '1.0.0' };
  if (line === 'sdk-1.x') {
    const client = new Client1(info);
    await client.connect(new Transport1(new URL(url), { requestInit }));
    return {
      line,
      protocolVersion: () => transportVersion(client),
      listTools: async () => (await client.listTools()).tools,
      call: async (name, args) => outcome((await client.callTool({ name, arguments: args }, undefined, { timeout: 120_000 })) as Record<string, unknown>),
      close: () => client.close(),
    };
  }
  const client = new Client2(info, line === 'client-2.x-2026-07-28' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {});
  await client.connect(new Transport2(new URL(url), { requestInit }));
  return {
    line,
    protocolVersion: () => client.getNegotiatedProtocolVersion(),
    listTools: async () => (await client.listTools()).tools,
    call: async (name, args) => outcome(await client.callTool({ name, arguments: args }, { timeout: 120_000 })),
    close: () => client.close(),
  };
}
