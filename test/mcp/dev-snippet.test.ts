/** `airlock dev` prints an `mcpServers` entry a client can paste: it parses, with the URL and header. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mcpClientSnippet } from '../../dev/run.ts';

test('the MCP client snippet is JSON with the /mcp URL and the bearer header', () => {
  const parsed = JSON.parse(mcpClientSnippet('http://127.0.0.1:8080/mcp', 'tok.en.sig')) as { mcpServers: { airlock: { type: string; url: string; headers: Record<string, string> } } };
  assert.deepEqual(parsed.mcpServers.airlock, { type: 'http', url: 'http://127.0.0.1:8080/mcp', headers: { Authorization: 'Bearer tok.en.sig' } });
});
