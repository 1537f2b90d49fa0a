/**
 * nginx instances for the HTTP part, one worker each (airlock is one Node process):
 *  - a responder that answers every request like DynamoDB's GetItem, a fixed JSON body, so
 *    that what the proxies in front of it cost is what gets measured;
 *  - a plain reverse proxy (`proxy_pass` with upstream keep-alive) in front of the responder:
 *    the floor for any proxy, since it neither checks nor signs anything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/harness/postgres-cluster.ts';
import { cpuMicros, sleep } from '../lib/proc.ts';
import { isRoot } from '../lib/tools.ts';

export const GETITEM_RESPONSE = '{"Item":{"id":{"S":"o-1001"},"customer":{"S":"acme"},"total":{"N":"120.50"},"status":{"S":"shipped"}}}';

export interface Nginx {
  url: string;
  port: number;
  /** CPU of the master and its workers, µs. */
  cpuMicros(): number;
  stop(): Promise<void>;
}

function responderServer(port: number): string {
  return `
  server {
    listen 127.0.0.1:${port};
    location / {
      default_type application/x-amz-json-1.0;
      add_header x-amzn-RequestId bench-responder;
      return 200 '${GETITEM_RESPONSE}';
    }
  }`;
}

function proxyServer(port: number, upstreamPort: number): string {
  return `
  upstream dynamodb {
    server 127.0.0.1:${upstreamPort};
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${port};
    location /dynamodb {
      proxy_pass http://dynamodb/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }`;
}

export function startResponder(binary: string): Promise<Nginx> {
  return startNginx(binary, 'responder', responderServer);
}

export function startProxy(binary: string, upstreamPort: number): Promise<Nginx> {
  return startNginx(binary, 'proxy', (port) => proxyServer(port, upstreamPort));
}

async function startNginx(binary: string, name: string, server: (port: number) => string): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), `airlock-bench-nginx-${name}-`));
  mkdirSync(join(dir, 'tmp'));
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  const pidfile = join(dir, 'nginx.pid');
  const errorLog = join(dir, 'error.log');
  writeFileSync(
    conf,
    `${isRoot ? 'user root;' : ''}
worker_processes 1;
daemon off;
master_process on;
pid ${pidfile};
error_log ${errorLog} warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
${server(port)}
}
`,
  );
  const child: ChildProcess = spawn(binary, ['-p', dir, '-c', conf, '-e', errorLog], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));
  const stop = async () => {
    if (!exited) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGQUIT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exited) {
      const log = existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : '';
      await stop();
      throw new Error(`nginx (${name}) exited at start: ${(output + log).trim().slice(-2000)}`);
    }
    try {
      const res = await fetch(`${url}/dynamodb`, { method: 'POST', body: '{}' });
      await res.arrayBuffer();
      break;
    } catch {
      // not yet listening
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nginx (${name}) not answering on ${url} after 10 s: ${output.trim().slice(-2000)}`);
    }
    await sleep(50);
  }
  const master = child.pid!;
  return {
    url,
    port,
    cpuMicros: () => [master, ...childrenOf(master)].reduce((sum, pid) => sum + cpuMicros(pid), 0),
    stop,
  };
}

/** Direct children of a process (nginx workers), from the parent field of /proc/<pid>/stat. */
function childrenOf(parent: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) out.push(Number(entry));
    } catch {
      // the process went away while we looked
    }
  }
  return out;
}
