/**
 * The gateway's HTTP listener answers an upgrade it does not speak (kubectl's SPDY
 * fallback) through the app, as an ordinary request, instead of leaving it hanging.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startTestGateway, type TestGateway } from '../harness/gateway.ts';
import { echoPlugin } from './fixtures/echo-plugin.ts';

let gw: TestGateway;
before(async () => {
  gw = await startTestGateway({ extraPlugins: [echoPlugin], config: { resources: { things: { type: 'echo', access: { read: { things: ['a'] } } } } } });
});
after(() => gw?.close());

test('a SPDY upgrade request gets an HTTP answer and a closed connection', async () => {
  const { port } = new URL(gw.url);
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within 5 s; got: ${JSON.stringify(data)}`));
    }, 5000);
    socket.on('data', (d) => (data += d.toString()));
    socket.on('end', () => {
      clearTimeout(timer);
      resolve(data);
    });
    socket.write('GET /echo/thing/a HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n');
  });
  assert.match(answer, /^HTTP\/1\.1 401 /);
  assert.match(answer, /connection: close/i);
  // Every credential failure reads alike (no hint whether the grant exists).
  assert.match(answer, /grant credential does not match/);
});
