/**
 * The JSON front reads a request's line and headers from Node's own parse (rawHeaders) rather
 * than asking @hono/node-server for a full web `Headers` per request. These cases hold the two
 * readings equal on real requests sent over a socket to a real listener: repeated fields,
 * mixed-case names, odd spacing, a query string, an encoded path.
 */
import assert from 'node:assert/strict';
import { connect, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { Server } from 'node:http';
import { headersFromRaw, requestHead, type RequestHead } from '../../core/aws/json-front/request-head.ts';

interface Seen {
  head: RequestHead;
  web: Record<string, string>;
  url: string;
}

describe('JSON front request head', () => {
  let server: Server;
  let port = 0;
  const seen: Seen[] = [];

  before(async () => {
    const app = new Hono();
    app.all('*', (c) => {
      const web: Record<string, string> = Object.create(null) as Record<string, string>;
      c.req.raw.headers.forEach((value, name) => (web[name] = value));
      seen.push({ head: requestHead(c), web, url: c.req.url });
      return c.text('ok');
    });
    server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server)) as Server;
    });
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** Send one raw HTTP/1.1 request and wait for the answer. */
  async function send(raw: string): Promise<Seen> {
    const before = seen.length;
    await new Promise<void>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.end(raw));
      socket.on('data', () => {});
      socket.on('end', () => resolve());
      socket.on('error', reject);
    });
    assert.equal(seen.length, before + 1, 'the request reached the app');
    return seen[seen.length - 1]!;
  }

  it('gives the headers a web Headers object holds, repeated fields joined', async () => {
    const body = '{"TableName":"orders"}';
    const s = await send(
      'POST /dynamodb/a%20b?x=1&y=%2F HTTP/1.1\r\n' +
        'Host: 127.0.0.1\r\n' +
        'X-Amz-Target: DynamoDB_20120810.GetItem\r\n' +
        'x-amz-meta:   padded value  \r\n' +
        'X-Custom: one\r\n' +
        'x-custom: two\r\n' +
        'Content-Type: application/x-amz-json-1.0\r\n' +
        `Content-Length: ${body.length}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
    assert.deepEqual(Object.entries(s.head.headers).sort(), Object.entries(s.web).sort());
    assert.equal(s.head.headers['x-custom'], 'one, two');
    assert.equal(s.head.method, 'POST');
    assert.equal(s.head.path, '/dynamodb/a%20b');
    assert.equal(s.head.query, 'x=1&y=%2F');
    const url = new URL(s.url);
    assert.equal(s.head.path, url.pathname);
    assert.equal(s.head.query, url.search.slice(1));
    assert.match(s.head.source ?? '', /^127\.0\.0\.1:\d+$/);
  });

  it('has no query and an empty one alike', async () => {
    const plain = await send('GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
    assert.equal(plain.head.query, '');
    assert.deepEqual(Object.entries(plain.head.headers).sort(), Object.entries(plain.web).sort());
  });

  it('reads odd targets the way a URL parser does (they take the general way)', async () => {
    for (const target of ['/a/../b?x=1', '/%2e%2e/x', '/a/./b', '/q?a=%7B&b=c#frag', '/.well-known/x']) {
      const s = await send(`GET ${target} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`);
      const url = new URL(s.url);
      assert.equal(s.head.path, url.pathname, target);
      assert.equal(s.head.query, url.search.slice(1), target);
    }
  });

  it('holds headers named like Object members as ordinary headers', async () => {
    const s = await send('GET /x HTTP/1.1\r\nHost: h\r\nConstructor: v\r\n__proto__: p\r\ntoString: t\r\nConnection: close\r\n\r\n');
    assert.deepEqual(Object.entries(s.head.headers).sort(), Object.entries(s.web).sort());
    assert.equal(s.head.headers['constructor'], 'v');
    assert.equal(s.head.headers['__proto__'], 'p');
    assert.equal(s.head.headers['valueof'], undefined);
  });

  it('skips HTTP/2 pseudo-headers and lower-cases names', () => {
    assert.deepEqual(Object.entries(headersFromRaw([':method', 'POST', 'Host', 'h', 'A', '1', 'a', '2'])), [['host', 'h'], ['a', '1, 2']]);
  });
});
