/**
 * STAND-IN for the RDS IAM authentication front of an Amazon RDS PostgreSQL instance, which
 * cannot run here. It replaces only the AWS-managed token check, never airlock:
 *  - speaks the Postgres startup and REQUIRES TLS (as RDS does for IAM logins), with its own
 *    self-signed certificate;
 *  - asks for AuthenticationCleartextPassword and verifies the password as an RDS IAM token the
 *    way RDS does: a SigV4 query-presigned `GET https://<host>:<port>/?Action=connect&DBUser=<user>`
 *    for service `rds-db`, DBUser equal to the startup user, host:port equal to this endpoint,
 *    signed headers exactly `host`, X-Amz-Date + X-Amz-Expires (≤ 900 s) covering now, and the
 *    signature recomputed here, independently, from the test's known secret key for the access
 *    key id (constant-time compare);
 *  - with `requireRdsIamMembership`, also requires the login role to be a member of `rds_iam`
 *    (RDS accepts IAM tokens only for such roles, and then for them only), checked on the
 *    real server;
 *  - then relays to the real local PostgreSQL over its Unix socket (trust for local logins), so
 *    what the client sees after authentication is the real server.
 * Cancel requests are forwarded to the real server as they are.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import postgres from 'postgres';
import { generateSelfSignedCert, type PostgresCluster } from '../harness/postgres-cluster.ts';

export interface TokenCheck {
  /** host:port clients use to reach this front (what the token must name). */
  endpoint: string;
  user: string;
  region: string;
  /** Known secret keys by access key id. */
  secrets: ReadonlyMap<string, string>;
  now?: Date;
}

const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');
const MAX_EXPIRES = 900;
const CLOCK_SKEW_MS = 5 * 60_000;

function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/** Returns null when the token verifies, or the reason it does not. */
export function verifyRdsIamToken(token: string, check: TokenCheck): string | null {
  const slash = token.indexOf('/');
  if (slash < 0 || token.slice(slash, slash + 2) !== '/?') return 'token is not host:port/?query';
  if (token.slice(0, slash) !== check.endpoint) return `token is for ${token.slice(0, slash)}, not ${check.endpoint}`;
  const params = new Map<string, string>();
  for (const pair of token.slice(slash + 2).split('&')) {
    const eq = pair.indexOf('=');
    if (eq < 0) return 'malformed query';
    let k: string;
    let v: string;
    try {
      k = decodeURIComponent(pair.slice(0, eq));
      v = decodeURIComponent(pair.slice(eq + 1));
    } catch {
      return 'malformed percent-encoding';
    }
    if (params.has(k)) return `duplicate ${k}`;
    params.set(k, v);
  }
  if (params.get('Action') !== 'connect') return 'Action is not connect';
  if (params.get('DBUser') !== check.user) return `DBUser ${params.get('DBUser')} is not the login user ${check.user}`;
  if (params.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') return 'unsupported algorithm';
  if (params.get('X-Amz-SignedHeaders') !== 'host') return 'signed headers must be exactly host';
  const credential = (params.get('X-Amz-Credential') ?? '').split('/');
  if (credential.length !== 5) return 'malformed credential';
  const [akid, day, region, service, terminator] = credential as [string, string, string, string, string];
  if (service !== 'rds-db' || terminator !== 'aws4_request') return `credential scope is not rds-db/aws4_request`;
  if (region !== check.region) return `token is for region ${region}`;
  const secret = check.secrets.get(akid);
  if (secret === undefined) return `unknown access key ${akid}`;
  const amzDate = params.get('X-Amz-Date') ?? '';
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!m) return 'malformed X-Amz-Date';
  if (amzDate.slice(0, 8) !== day) return 'credential date does not match X-Amz-Date';
  const signedAt = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  const expires = Number(params.get('X-Amz-Expires'));
  if (!Number.isInteger(expires) || expires <= 0 || expires > MAX_EXPIRES) return `X-Amz-Expires ${params.get('X-Amz-Expires')} is not within 1..900`;
  const now = (check.now ?? new Date()).getTime();
  if (now > signedAt + expires * 1000) return 'token expired';
  if (signedAt > now + CLOCK_SKEW_MS) return 'token signed in the future';
  const signature = params.get('X-Amz-Signature') ?? '';
  if (!/^[0-9a-f]{64}$/.test(signature)) return 'malformed signature';

  const canonicalQuery = [...params]
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const scope = `${day}/${region}/rds-db/aws4_request`;
  let key: Buffer = createHmac('sha256', `AWS4${secret}`).update(day).digest();
  for (const part of [region, 'rds-db', 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
  // SDKs differ in the payload hash of a presigned GET: the hash of the empty body or UNSIGNED-PAYLOAD.
  for (const payload of [EMPTY_SHA256, 'UNSIGNED-PAYLOAD']) {
    const canonical = ['GET', '/', canonicalQuery, `host:${check.endpoint}`, '', 'host', payload].join('\n');
    const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
    const expected = createHmac('sha256', key).update(toSign).digest();
    if (timingSafeEqual(expected, Buffer.from(signature, 'hex'))) return null;
  }
  return 'signature does not match';
}

export interface RdsIamFront {
  readonly host: string;
  readonly port: number;
  readonly endpoint: string;
  /** Known secret keys by access key id (tests may change them). */
  readonly secrets: Map<string, string>;
  readonly accepted: string[];
  readonly rejected: string[];
  stop(): Promise<void>;
}

function fatal(code: string, message: string): Buffer {
  const body = Buffer.concat([Buffer.from(`SFATAL\0VFATAL\0C${code}\0M${message}\0`), Buffer.from([0])]);
  const out = Buffer.alloc(5);
  out[0] = 0x45;
  out.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([out, body]);
}

/** Read exactly one length-prefixed message (startup-style when typed = false). */
function readMessage(sock: Socket | TLSSocket, typed: boolean): Promise<{ raw: Buffer; type: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const head = typed ? 5 : 4;
      if (buf.length < head) return;
      const len = buf.readInt32BE(typed ? 1 : 0);
      if (len < 4 || len > 100_000) return done(new Error('bad length'));
      const total = len + (typed ? 1 : 0);
      if (buf.length < total) return;
      if (buf.length > total) return done(new Error('unexpected pipelined data during startup'));
      done(null, { raw: buf, type: typed ? buf[0]! : 0, body: buf.subarray(head) });
    };
    const onClose = () => done(new Error('closed'));
    const done = (err: Error | null, v?: { raw: Buffer; type: number; body: Buffer }) => {
      sock.off('data', onData);
      sock.off('close', onClose);
      sock.pause();
      if (err) reject(err);
      else resolve(v!);
    };
    sock.on('data', onData);
    sock.on('close', onClose);
    sock.resume();
  });
}

export async function startRdsIamFront(opts: { cluster: PostgresCluster; region: string; secrets: Record<string, string>; requireRdsIamMembership?: boolean }): Promise<RdsIamFront> {
  const certDir = mkdtempSync(join(tmpdir(), 'airlock-rds-front-'));
  const cert = generateSelfSignedCert(certDir, 'rds');
  const secureContext = createSecureContext({ cert: cert.certPem, key: cert.keyPem });
  const unixPath = join(opts.cluster.dir, `.s.PGSQL.${opts.cluster.port}`);
  const secrets = new Map(Object.entries(opts.secrets));
  const accepted: string[] = [];
  const rejected: string[] = [];
  const sockets = new Set<Socket>();
  let endpoint = '';
  // The real server answers whether a role may use IAM (Unix socket, trust, as the superuser).
  const catalogue = opts.requireRdsIamMembership
    ? postgres({ path: unixPath, username: opts.cluster.superuser, database: 'postgres', max: 1, onnotice: () => {} })
    : undefined;
  async function iamAllowed(user: string): Promise<boolean> {
    if (!catalogue) return true;
    const rows = await catalogue<{ ok: boolean }[]>`select exists (select 1 from pg_roles r where r.rolname = ${user} and pg_has_role(r.oid, 'rds_iam', 'member')) as ok`;
    return rows[0]?.ok === true;
  }

  async function serve(plain: Socket): Promise<void> {
    let sock: Socket | TLSSocket = plain;
    let first = await readMessage(plain, false);
    if (first.body.readInt32BE(0) === 80877102) {
      netConnect(unixPath).end(first.raw);
      plain.destroy();
      return;
    }
    if (first.body.readInt32BE(0) === 80877104) {
      plain.write('N');
      first = await readMessage(plain, false);
    }
    if (first.body.readInt32BE(0) !== 80877103) {
      plain.end(fatal('28000', 'pg_hba.conf rejects connection: no encryption (RDS IAM requires SSL)'));
      rejected.push('no TLS');
      return;
    }
    plain.write('S');
    const tls = new TLSSocket(plain, { isServer: true, secureContext });
    tls.on('error', () => tls.destroy());
    sock = tls;
    const startup = await readMessage(tls, false);
    const code = startup.body.readInt32BE(0);
    if (code === 80877102) {
      netConnect(unixPath).end(startup.raw);
      tls.destroy();
      return;
    }
    if (code !== 196608) {
      tls.end(fatal('08P01', 'unsupported protocol'));
      return;
    }
    const fields = startup.body.subarray(4).toString('utf8').split('\0');
    const params = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length && fields[i] !== ''; i += 2) params.set(fields[i]!, fields[i + 1]!);
    const user = params.get('user') ?? '';
    tls.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3])); // AuthenticationCleartextPassword
    const pw = await readMessage(tls, true);
    if (pw.type !== 0x70) {
      tls.end(fatal('08P01', 'expected password message'));
      return;
    }
    const token = pw.body.subarray(0, pw.body.indexOf(0)).toString('utf8');
    const why = verifyRdsIamToken(token, { endpoint, user, region: opts.region, secrets }) ?? ((await iamAllowed(user)) ? null : `role ${user} is not a member of rds_iam`);
    if (why !== null) {
      rejected.push(why);
      tls.end(fatal('28P01', `PAM authentication failed for user "${user}"`));
      return;
    }
    accepted.push(user);
    const upstream = netConnect(unixPath);
    upstream.on('error', () => tls.destroy());
    upstream.on('close', () => tls.destroy());
    tls.on('close', () => upstream.destroy());
    upstream.write(startup.raw);
    upstream.pipe(tls);
    tls.pipe(upstream);
    tls.resume();
  }

  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    serve(s).catch(() => s.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  endpoint = `127.0.0.1:${port}`;
  return {
    host: '127.0.0.1',
    port,
    endpoint,
    secrets,
    accepted,
    rejected,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await catalogue?.end({ timeout: 1 });
      rmSync(certDir, { recursive: true, force: true });
    },
  };
}
