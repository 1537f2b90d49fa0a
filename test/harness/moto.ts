/**
 * Test harness: a real moto 5 server (`python3 -m moto.server`) on a random loopback port.
 *
 * moto stands in for STS, IAM, S3, CloudWatch Logs, DynamoDB, SSM, EKS metadata. With
 * `enableAuth()` it checks SigV4 signatures and the IAM actions allowed to users and roles,
 * so a test proves that airlock signs with its own identity and needs only the actions it
 * was granted.
 *
 * Set-up calls (createUser, createRole) are signed with an admin user the harness creates
 * first, so they keep working after `enableAuth()`.
 *
 * Outages: `stop()` + `restart()` kill the process and start a fresh one on the same port;
 * moto keeps its state in memory only, so a restart LOSES every bucket, user, log group and
 * key, and auth enforcement is off again (the harness re-creates its admin user, with new
 * keys). To simulate an outage while keeping state, start with `{ interruptible: true }`:
 * `endpoint`/`port` then point at a small TCP relay in front of moto, and `suspend()`
 * closes that port and cuts every open connection (clients see ECONNREFUSED / reset) until
 * `resume()` listens on the same port again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { stopOnExit } from './reaper.ts';
import { createServer, type Server, type Socket, connect } from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';
import { HttpRequest } from '@smithy/protocol-http';
import { Hash } from '@smithy/hash-node';

export interface MotoKeys {
  accessKeyId: string;
  secretAccessKey: string;
  arn: string;
}

export interface Moto {
  /** Base URL clients use (the relay when `interruptible`). */
  endpoint: string;
  port: number;
  /** moto itself, bypassing the relay (same as `endpoint` unless `interruptible`): for
   *  upstreams that must stay reachable while the sinks' path is cut. */
  directEndpoint: string;
  /** The account moto uses (123456789012 unless MOTO_ACCOUNT_ID is set). */
  accountId: string;
  /** Keys of the harness's admin user (allowed `*`); use for set-up after enableAuth. */
  adminKeys(): MotoKeys;
  /** IAM user with an inline policy; returns its keys (use it as airlock's own identity). */
  createUser(name: string, policy: object): Promise<MotoKeys>;
  /** IAM role with a trust policy and an inline policy; returns its ARN. */
  createRole(name: string, trustPolicy: object, policy: object): Promise<string>;
  /** Turn on signature + IAM enforcement (POST /moto-api/reset-auth, body `0`). */
  enableAuth(): Promise<void>;
  /** Turn enforcement off again (reset-auth with `inf`). */
  disableAuth(): Promise<void>;
  /** Wipe all moto state (POST /moto-api/reset) and re-create the admin user. Auth goes off. */
  reset(): Promise<void>;
  /** Kill the moto process (state is lost). */
  stop(): Promise<void>;
  /** Start a fresh moto on the same port: empty state, auth off, new admin keys. */
  restart(): Promise<void>;
  /** Only with `interruptible`: refuse and cut all connections, keeping moto's state. */
  suspend(): Promise<void>;
  /** Only with `interruptible`: accept connections again on the same port. */
  resume(): Promise<void>;
}

export interface MotoOptions {
  /** Port for the endpoint (default: a free one). */
  port?: number;
  /** Put a TCP relay in front of moto so `suspend()`/`resume()` can cut it off. */
  interruptible?: boolean;
}

const ADMIN_POLICY = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] };
const READY_TIMEOUT_MS = 20_000;

/** Fail loudly, never skip: the tests that need moto cannot prove anything without it. */
async function assertMotoInstalled(): Promise<void> {
  const child = spawn('python3', ['-c', 'import moto.server'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', resolve);
  }).catch((e: unknown) => {
    throw new Error(`moto harness: cannot run python3 (${String(e)}); moto 5 must be installed`);
  });
  if (code !== 0) {
    throw new Error(`moto harness: \`python3 -c 'import moto.server'\` failed (exit ${code}): ${stderr.trim().slice(-500)}`);
  }
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('moto harness: no port');
  return address.port;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The text of one XML element, decoded; undefined when absent. */
function xmlText(xml: string, tag: string): string | undefined {
  const match = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(xml);
  if (!match?.[1]) return undefined;
  return match[1]
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

class MotoProcess {
  private child: ChildProcess | undefined;
  private output = '';

  constructor(readonly port: number) {}

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.output = '';
    const child = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(this.port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    });
    this.child = child;
    const forget = stopOnExit(() => child.kill('SIGKILL'));
    child.once('exit', forget);
    // Keep only the tail: moto logs every request.
    const keep = (d: Buffer): void => {
      this.output = (this.output + d.toString()).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let exited: number | null | undefined;
    child.on('exit', (code) => (exited = code));
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (exited !== undefined) {
        throw new Error(`moto harness: moto.server exited (code ${exited}) on port ${this.port}: ${this.output.trim()}`);
      }
      try {
        const res = await fetch(`${this.base}/moto-api/`);
        await res.arrayBuffer();
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`moto harness: moto.server not ready on port ${this.port} after ${READY_TIMEOUT_MS} ms: ${this.output.trim()}`);
      }
      await sleep(100);
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(timer);
  }
}

/** A TCP relay whose listening port can be closed and reopened (simulated outage). */
class Relay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly port: number,
    private readonly targetPort: number,
  ) {}

  async listen(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      this.sockets.add(client);
      this.sockets.add(upstream);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', resolve);
    });
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export async function startMoto(opts: MotoOptions = {}): Promise<Moto> {
  await assertMotoInstalled();
  const interruptible = opts.interruptible === true;
  const endpointPort = opts.port ?? (await freePort());
  const motoPort = interruptible ? await freePort() : endpointPort;
  const proc = new MotoProcess(motoPort);
  const relay = interruptible ? new Relay(endpointPort, motoPort) : undefined;
  const accountId = process.env['MOTO_ACCOUNT_ID'] ?? '123456789012';
  let admin: MotoKeys = { accessKeyId: 'AKIAHARNESSBOOTSTRAP', secretAccessKey: 'bootstrap', arn: '' };

  /** Sign (as admin) and send one IAM Query API call straight to moto; returns the XML. */
  async function iam(params: Record<string, string>): Promise<string> {
    const body = new URLSearchParams({ ...params, Version: '2010-05-08' }).toString();
    const request = new HttpRequest({
      method: 'POST',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: motoPort,
      path: '/',
      headers: { host: `127.0.0.1:${motoPort}`, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body,
    });
    const signer = new SignatureV4({
      service: 'iam',
      region: 'us-east-1',
      sha256: Hash.bind(null, 'sha256'),
      credentials: { accessKeyId: admin.accessKeyId, secretAccessKey: admin.secretAccessKey },
    });
    const signed = await signer.sign(request);
    const res = await fetch(`${proc.base}/`, {
      method: 'POST',
      headers: signed.headers,
      body,
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`moto harness: IAM ${params['Action']} failed: HTTP ${res.status} ${text.slice(0, 500)}`);
    return text;
  }

  async function createUser(name: string, policy: object): Promise<MotoKeys> {
    const created = await iam({ Action: 'CreateUser', UserName: name });
    await iam({ Action: 'PutUserPolicy', UserName: name, PolicyName: `${name}-inline`, PolicyDocument: JSON.stringify(policy) });
    const keys = await iam({ Action: 'CreateAccessKey', UserName: name });
    const accessKeyId = xmlText(keys, 'AccessKeyId');
    const secretAccessKey = xmlText(keys, 'SecretAccessKey');
    const arn = xmlText(created, 'Arn');
    if (!accessKeyId || !secretAccessKey || !arn) throw new Error(`moto harness: unexpected IAM answer for user ${name}`);
    return { accessKeyId, secretAccessKey, arn };
  }

  async function createRole(name: string, trustPolicy: object, policy: object): Promise<string> {
    const created = await iam({ Action: 'CreateRole', RoleName: name, AssumeRolePolicyDocument: JSON.stringify(trustPolicy) });
    await iam({ Action: 'PutRolePolicy', RoleName: name, PolicyName: `${name}-inline`, PolicyDocument: JSON.stringify(policy) });
    const arn = xmlText(created, 'Arn');
    if (!arn) throw new Error(`moto harness: unexpected IAM answer for role ${name}`);
    return arn;
  }

  async function motoApi(path: string, body?: string): Promise<void> {
    const res = await fetch(`${proc.base}/moto-api/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      ...(body === undefined ? {} : { body }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`moto harness: /moto-api/${path} failed: HTTP ${res.status} ${text.slice(0, 300)}`);
  }

  async function bootstrapAdmin(): Promise<void> {
    admin = { accessKeyId: 'AKIAHARNESSBOOTSTRAP', secretAccessKey: 'bootstrap', arn: '' };
    admin = await createUser('airlock-harness-admin', ADMIN_POLICY);
  }

  await proc.start();
  try {
    await bootstrapAdmin();
    await relay?.listen();
  } catch (e) {
    await relay?.close();
    await proc.stop();
    throw e;
  }

  function needRelay(): Relay {
    if (!relay) throw new Error('moto harness: suspend/resume need startMoto({ interruptible: true })');
    return relay;
  }

  return {
    endpoint: `http://127.0.0.1:${endpointPort}`,
    port: endpointPort,
    directEndpoint: proc.base,
    accountId,
    adminKeys: () => ({ ...admin }),
    createUser,
    createRole,
    enableAuth: () => motoApi('reset-auth', '0'),
    disableAuth: () => motoApi('reset-auth', 'inf'),
    async reset() {
      await motoApi('reset-auth', 'inf');
      await motoApi('reset');
      await bootstrapAdmin();
    },
    async stop() {
      await relay?.close();
      await proc.stop();
    },
    async restart() {
      await proc.stop();
      await proc.start();
      await bootstrapAdmin();
      await relay?.listen();
    },
    suspend: () => needRelay().close(),
    resume: () => needRelay().listen(),
  };
}
