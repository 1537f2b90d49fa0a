/**
 * STAND-IN for the Kubernetes API server of an Amazon EKS cluster — an AWS-managed service
 * that cannot run on this machine. It is NOT the part under test: airlock's EKS plugin is.
 *
 * What it verifies, as the real service does:
 *  - TLS with its own CA (the test hands airlock that CA, like EKS's certificateAuthority);
 *  - every request carries `Authorization: Bearer k8s-aws-v1.<token>`, checked the way
 *    aws-iam-authenticator's `tokenVerifier.Verify` does (pkg/token/token.go): size, prefix,
 *    base64url without padding, https URL on an STS host, path `/`, only the allow-listed
 *    query keys each once, Action=GetCallerIdentity, `x-k8s-aws-id` among the signed
 *    headers, 0 <= X-Amz-Expires <= 900, X-Amz-Date present and less than 15 minutes old.
 *    The real authenticator then replays the URL to STS with `x-k8s-aws-id: <its cluster>`;
 *    here we do what STS would do with that replay: recompute the SigV4 query signature
 *    with the test's known secret key, the URL's host and THIS cluster's name, so a token
 *    for another cluster or with a bad signature fails;
 *  - requests carrying Impersonate-* headers are refused (and recorded for assertions).
 *
 * What it serves: discovery (/version, /api, /api/v1, /apis), namespaces, pods (list, get,
 * watch with a stream of MODIFIED events, as Table when kubectl asks for one), pods/log
 * (with follow), and pods/exec over WebSocket speaking the v5/v4 channel protocols
 * (`echo a b` -> "a b\n" on stdout; `cat` echoes stdin; then a Status on the error channel).
 */
import { createHmac, createHash, timingSafeEqual } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';

export interface TestKeys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}

export interface TokenCheckOptions {
  cluster: string;
  keys: TestKeys;
  now?: () => number;
}

const TOKEN_PREFIX = 'k8s-aws-v1.';
const MAX_TOKEN_BYTES = 4096;
const ALLOWED_QUERY_KEYS = new Set(['action', 'version', 'x-amz-algorithm', 'x-amz-credential', 'x-amz-date', 'x-amz-expires', 'x-amz-security-token', 'x-amz-signature', 'x-amz-signedheaders']);
const TOKEN_LIFE_MS = 15 * 60_000;
/** Hosts of STS's regional and global public endpoints (what the authenticator allows). */
const STS_HOST = /^sts(\.[a-z]{2}(-[a-z]+)+-\d+)?\.amazonaws\.com(\.cn)?$/;

const rfc3986 = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const sha256hex = (s: string): string => createHash('sha256').update(s).digest('hex');
const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data).digest();

/** Verify an EKS token; returns the access key id that signed it or throws with the reason. */
export function verifyEksToken(token: string, opts: TokenCheckOptions): { accessKeyId: string; signedAt: Date } {
  if (token.length > MAX_TOKEN_BYTES) throw new Error('token is too large');
  if (!token.startsWith(TOKEN_PREFIX)) throw new Error(`token is missing expected "${TOKEN_PREFIX}" prefix`);
  const encoded = token.slice(TOKEN_PREFIX.length);
  // Go's RawURLEncoding: URL alphabet, no padding; anything else is an error.
  if (!/^[A-Za-z0-9_-]*$/.test(encoded) || encoded.length % 4 === 1) throw new Error('token is not base64url without padding');
  const url = new URL(Buffer.from(encoded, 'base64url').toString('utf8'));
  if (url.protocol !== 'https:') throw new Error(`unexpected scheme ${url.protocol} in pre-signed URL`);
  if (url.port !== '' || !STS_HOST.test(url.hostname)) throw new Error(`unexpected hostname "${url.host}" in pre-signed URL`);
  if (url.pathname !== '/') throw new Error('unexpected path in pre-signed URL');

  const params = new Map<string, { key: string; value: string }>();
  for (const [key, value] of url.searchParams) {
    const lower = key.toLowerCase();
    if (!ALLOWED_QUERY_KEYS.has(lower)) throw new Error(`non-whitelisted query parameter "${key}"`);
    if (params.has(lower)) throw new Error('query parameter with multiple values not supported');
    params.set(lower, { key, value });
  }
  const get = (k: string): string => params.get(k)?.value ?? '';
  if (get('action') !== 'GetCallerIdentity') throw new Error('unexpected action parameter in pre-signed URL');
  const signedHeaders = get('x-amz-signedheaders').split(';');
  if (!signedHeaders.some((h) => h.toLowerCase() === 'x-k8s-aws-id')) throw new Error('client did not sign the x-k8s-aws-id header in the pre-signed URL');
  const expiresRaw = get('x-amz-expires');
  const expires = /^\d+$/.test(expiresRaw) ? Number(expiresRaw) : NaN;
  if (!(expires >= 0 && expires <= 900)) throw new Error(`invalid X-Amz-Expires parameter in pre-signed URL: ${expiresRaw}`);
  const date = get('x-amz-date');
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
  if (!m) throw new Error('X-Amz-Date parameter must be present in pre-signed URL');
  const signedAt = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  const now = (opts.now ?? Date.now)();
  if (now > signedAt.getTime() + TOKEN_LIFE_MS) throw new Error('X-Amz-Date parameter is expired (15 minute expiration)');
  // STS refuses requests signed too far in the future as well.
  if (signedAt.getTime() - now > 5 * 60_000) throw new Error('X-Amz-Date is in the future');

  // --- what STS checks when the authenticator replays the URL ---
  if (get('x-amz-algorithm') !== 'AWS4-HMAC-SHA256') throw new Error('unsupported X-Amz-Algorithm');
  const [akid, scopeDate, scopeRegion, scopeService, terminator, ...rest] = get('x-amz-credential').split('/');
  if (rest.length || terminator !== 'aws4_request' || scopeService !== 'sts' || scopeDate !== date.slice(0, 8)) throw new Error('malformed X-Amz-Credential');
  const hostRegion = /^sts\.([^.]+)\./.exec(url.hostname)?.[1] ?? 'us-east-1';
  if (scopeRegion !== hostRegion) throw new Error(`credential scope region ${scopeRegion} does not match the STS endpoint ${url.hostname}`);
  if (akid !== opts.keys.accessKeyId) throw new Error('The security token included in the request is invalid (unknown access key)');
  if ((opts.keys.sessionToken ?? '') !== get('x-amz-security-token')) throw new Error('The security token included in the request is invalid');

  const replayHeaders: Record<string, string> = { host: url.host, 'x-k8s-aws-id': opts.cluster, accept: 'application/json' };
  const sortedSigned = [...signedHeaders].map((h) => h.toLowerCase());
  if (sortedSigned.join(';') !== [...sortedSigned].sort().join(';')) throw new Error('signed headers are not sorted');
  const canonicalHeaders = sortedSigned.map((h) => `${h}:${(replayHeaders[h] ?? '').trim()}\n`).join('');
  const canonicalQuery = [...url.searchParams]
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalRequest = ['GET', '/', canonicalQuery, canonicalHeaders, sortedSigned.join(';'), sha256hex('')].join('\n');
  const credentialScope = `${scopeDate}/${scopeRegion}/sts/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', date, credentialScope, sha256hex(canonicalRequest)].join('\n');
  const kSigning = hmac(hmac(hmac(hmac(`AWS4${opts.keys.secretAccessKey}`, scopeDate), scopeRegion), 'sts'), 'aws4_request');
  const expected = Buffer.from(hmac(kSigning, stringToSign).toString('hex'));
  const given = Buffer.from(get('x-amz-signature'));
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new Error('SignatureDoesNotMatch: the signature does not match (wrong key or cluster)');
  return { accessKeyId: akid, signedAt };
}

// ------------------------------------------------------------------------------------------
// TLS material for the stand-in: a throwaway CA and a server certificate for 127.0.0.1
// ------------------------------------------------------------------------------------------

export function makeTestCa(dir: string): { caPem: string; certPem: string; keyPem: string } {
  const p = (f: string): string => join(dir, f);
  const run = (args: string[]): void => {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-subj', '/CN=eks-stand-in-ca', '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=kube-apiserver']);
  writeFileSync(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  run(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.pem'), '-days', '2', '-extfile', p('ext.cnf')]);
  return { caPem: readFileSync(p('ca.pem'), 'utf8'), certPem: readFileSync(p('server.pem'), 'utf8'), keyPem: readFileSync(p('server.key'), 'utf8') };
}

// ------------------------------------------------------------------------------------------
// The API server
// ------------------------------------------------------------------------------------------

export interface SeenRequest {
  method: string;
  path: string;
  query: string;
  /** Lower-case names of every header received. */
  headerNames: string[];
  authorized: boolean;
  authError?: string | undefined;
  websocket: boolean;
  protocol?: string | undefined;
}

export interface EksApiServer {
  url: string;
  caPem: string;
  caFile: string;
  cluster: string;
  seen: SeenRequest[];
  /** stdin bytes each exec received, in order. */
  execStdin: string[];
  /** Active watch and follow streams (to assert airlock cut them). */
  openStreams(): number;
  /** Bytes the `flood` log stream has written so far (it writes as fast as the socket drains). */
  floodBytes(): number;
  close(): Promise<void>;
}

export interface EksApiServerOptions {
  cluster: string;
  keys: TestKeys;
  /** Channel protocols to accept for exec, in order of preference. */
  execProtocols?: string[];
  now?: () => number;
  /** Interval of watch events and follow log lines. */
  tickMs?: number;
  /** Called the moment a request arrives, before it is answered (conformance: what was recorded by then). */
  onRequest?: (request: SeenRequest) => void;
}

const NAMESPACES = ['default', 'kube-system', 'team-b'];
const PODS: Record<string, string[]> = { default: ['web-1', 'web-2'], 'kube-system': ['coredns-1'], 'team-b': ['db-1'] };
const CREATED = '2026-01-01T00:00:00Z';

function podObject(ns: string, name: string, rv: number, phase = 'Running'): Record<string, unknown> {
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: { name, namespace: ns, uid: `uid-${ns}-${name}`, resourceVersion: String(rv), creationTimestamp: CREATED },
    spec: { containers: [{ name: 'main', image: 'busybox' }] },
    status: { phase },
  };
}

const POD_COLUMNS = [
  { name: 'Name', type: 'string', format: 'name', description: 'Name', priority: 0 },
  { name: 'Ready', type: 'string', format: '', description: 'Ready', priority: 0 },
  { name: 'Status', type: 'string', format: '', description: 'Status', priority: 0 },
  { name: 'Restarts', type: 'string', format: '', description: 'Restarts', priority: 0 },
  { name: 'Age', type: 'string', format: '', description: 'Age', priority: 0 },
];

function podRow(ns: string, name: string, rv: number, phase = 'Running'): Record<string, unknown> {
  return {
    cells: [name, '1/1', phase, '0', '1d'],
    object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: { name, namespace: ns, resourceVersion: String(rv), creationTimestamp: CREATED } },
  };
}

function table(rows: Record<string, unknown>[], rv: number): Record<string, unknown> {
  return { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion: String(rv) }, columnDefinitions: POD_COLUMNS, rows };
}

const wantsTable = (req: IncomingMessage): boolean => /as=Table/.test(req.headers.accept ?? '');

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }));
}

function json(res: ServerResponse, body: unknown, contentType = 'application/json'): void {
  res.writeHead(200, { 'content-type': contentType });
  res.end(JSON.stringify(body));
}

const API_V1_RESOURCES = {
  kind: 'APIResourceList',
  apiVersion: 'v1',
  groupVersion: 'v1',
  resources: [
    { name: 'namespaces', singularName: 'namespace', namespaced: false, kind: 'Namespace', verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['ns'] },
    { name: 'nodes', singularName: 'node', namespaced: false, kind: 'Node', verbs: ['get', 'list', 'watch'], shortNames: ['no'] },
    { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['po'], categories: ['all'] },
    { name: 'pods/exec', singularName: '', namespaced: true, kind: 'PodExecOptions', verbs: ['create', 'get'] },
    { name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] },
    { name: 'secrets', singularName: 'secret', namespaced: true, kind: 'Secret', verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] },
  ],
};

export async function startEksApiServer(opts: EksApiServerOptions): Promise<EksApiServer> {
  const dir = mkdtempSync(join(tmpdir(), 'eks-standin-'));
  const tls = makeTestCa(dir);
  const caFile = join(dir, 'ca.pem');
  const seen: SeenRequest[] = [];
  const execStdin: string[] = [];
  const tickMs = opts.tickMs ?? 200;
  const execProtocols = opts.execProtocols ?? ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
  let rv = 100;
  let flooded = 0;
  const streams = new Set<ServerResponse>();
  const sockets = new Set<Socket>();

  /** Authenticate like the EKS control plane: returns an error message or undefined. */
  const authenticate = (req: IncomingMessage): string | undefined => {
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('Bearer ')) return 'no bearer token';
    try {
      verifyEksToken(auth.slice(7).trim(), { cluster: opts.cluster, keys: opts.keys, now: opts.now });
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  };

  const note = (req: IncomingMessage, websocket: boolean): SeenRequest => {
    const u = new URL(req.url ?? '/', 'https://standin');
    const authError = authenticate(req);
    const entry: SeenRequest = { method: req.method ?? '', path: u.pathname, query: u.search.slice(1), headerNames: Object.keys(req.headers), authorized: authError === undefined, authError, websocket };
    seen.push(entry);
    opts.onRequest?.(entry);
    return entry;
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const entry = note(req, false);
    if (!entry.authorized) return status(res, 401, 'Unauthorized', `Unauthorized: ${entry.authError}`);
    if (entry.headerNames.some((h) => h.startsWith('impersonate-'))) return status(res, 403, 'Forbidden', 'impersonation is not allowed for this identity');
    const u = new URL(req.url ?? '/', 'https://standin');
    const parts = u.pathname.split('/').filter(Boolean);
    const method = req.method ?? 'GET';

    if (method === 'GET' && u.pathname === '/version') return json(res, { major: '1', minor: '32', gitVersion: 'v1.32.0-eks-standin', platform: 'linux/amd64' });
    if (method === 'GET' && u.pathname === '/api') return json(res, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: 'standin:443' }] });
    if (method === 'GET' && u.pathname === '/apis') return json(res, { kind: 'APIGroupList', apiVersion: 'v1', groups: [] });
    if (method === 'GET' && u.pathname === '/api/v1') return json(res, API_V1_RESOURCES);
    if (parts[0] !== 'api' || parts[1] !== 'v1') return status(res, 404, 'NotFound', 'the server could not find the requested resource');

    // /api/v1/namespaces[/ns[/pods[/name[/log]]]]
    const rest = parts.slice(2);
    if (rest[0] === 'namespaces' && rest.length === 1 && method === 'GET') {
      return json(res, { kind: 'NamespaceList', apiVersion: 'v1', metadata: { resourceVersion: String(rv) }, items: NAMESPACES.map((n) => ({ kind: 'Namespace', apiVersion: 'v1', metadata: { name: n, creationTimestamp: CREATED }, status: { phase: 'Active' } })) });
    }
    if (rest[0] === 'nodes' && method === 'GET') return json(res, { kind: 'NodeList', apiVersion: 'v1', metadata: {}, items: [] });
    if (rest[0] !== 'namespaces' || rest.length < 2) return status(res, 404, 'NotFound', 'the server could not find the requested resource');
    const ns = rest[1]!;
    if (!NAMESPACES.includes(ns)) return status(res, 404, 'NotFound', `namespaces "${ns}" not found`);
    if (rest.length === 2 && method === 'GET') return json(res, { kind: 'Namespace', apiVersion: 'v1', metadata: { name: ns, creationTimestamp: CREATED }, status: { phase: 'Active' } });
    if (rest[2] === 'secrets') return json(res, { kind: 'SecretList', apiVersion: 'v1', metadata: {}, items: [{ metadata: { name: 'token', namespace: ns }, data: { password: 'c2VjcmV0' } }] });
    if (rest[2] !== 'pods') return status(res, 404, 'NotFound', 'the server could not find the requested resource');
    const pods = PODS[ns] ?? [];
    const name = rest[3];

    if (name === undefined) {
      if (method === 'DELETE') return json(res, { kind: 'Status', apiVersion: 'v1', status: 'Success' });
      if (method !== 'GET') return status(res, 405, 'MethodNotAllowed', 'method not allowed');
      const watch = u.searchParams.get('watch');
      if (watch !== null && watch !== 'false' && watch !== '0') {
        // A watch: a chunked stream of events until the client (or airlock) goes away.
        const asTable = wantsTable(req);
        res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
        res.flushHeaders();
        streams.add(res);
        let phaseFlip = false;
        const send = (type: string, pod: string): void => {
          rv += 1;
          const phase = phaseFlip ? 'Running' : 'Succeeded';
          const object = asTable ? table([podRow(ns, pod, rv, phase)], rv) : podObject(ns, pod, rv, phase);
          res.write(`${JSON.stringify({ type, object })}\n`);
        };
        if (!u.searchParams.get('resourceVersion')) for (const p of pods) send('ADDED', p);
        const timer = setInterval(() => {
          phaseFlip = !phaseFlip;
          if (pods[0]) send('MODIFIED', pods[0]);
        }, tickMs);
        const stop = (): void => {
          clearInterval(timer);
          streams.delete(res);
        };
        res.on('close', stop);
        return;
      }
      if (u.searchParams.get('labelSelector') === 'airlock-test=endless') {
        // A list that never finishes (a huge list on a slow link): airlock must cut it with the grant.
        res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
        res.write('{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[');
        streams.add(res);
        let first = true;
        const timer = setInterval(() => {
          res.write(`${first ? '' : ','}${JSON.stringify(podObject(ns, pods[0] ?? 'web-1', ++rv))}`);
          first = false;
        }, tickMs);
        res.on('close', () => {
          clearInterval(timer);
          streams.delete(res);
        });
        return;
      }
      rv += 1;
      if (wantsTable(req)) return json(res, table(pods.map((p) => podRow(ns, p, rv)), rv), 'application/json;as=Table;v=v1;g=meta.k8s.io');
      return json(res, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(rv) }, items: pods.map((p) => podObject(ns, p, rv)) });
    }

    if (name === 'flood' && rest[4] === 'log' && method === 'GET') {
      // A log that never ends and writes whenever the socket takes more: shows whether the
      // reader's pace reaches back to here (backpressure) or something buffers without bound.
      res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
      streams.add(res);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let open = true;
      const pump = (): void => {
        while (open && res.write(chunk)) flooded += chunk.length;
        if (open) {
          flooded += chunk.length;
          res.once('drain', pump);
        }
      };
      res.on('close', () => {
        open = false;
        streams.delete(res);
      });
      pump();
      return;
    }
    if (!pods.includes(name)) return status(res, 404, 'NotFound', `pods "${name}" not found`);
    const sub = rest[4];
    if (sub === undefined) {
      if (method === 'DELETE') return json(res, podObject(ns, name, ++rv, 'Terminating'));
      if (method !== 'GET') return status(res, 405, 'MethodNotAllowed', 'method not allowed');
      if (wantsTable(req)) return json(res, table([podRow(ns, name, rv)], rv), 'application/json;as=Table;v=v1;g=meta.k8s.io');
      return json(res, podObject(ns, name, rv));
    }
    if (sub === 'log' && method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
      res.write(`log line 1 from ${name}\nlog line 2 from ${name}\n`);
      if (u.searchParams.get('follow') !== 'true') return void res.end();
      streams.add(res);
      let n = 3;
      const timer = setInterval(() => res.write(`log line ${n++} from ${name}\n`), tickMs);
      res.on('close', () => {
        clearInterval(timer);
        streams.delete(res);
      });
      return;
    }
    if (sub === 'exec') {
      if (req.headers.upgrade) return status(res, 400, 'BadRequest', `upgrade ${req.headers.upgrade} is not supported by this stand-in`);
      return status(res, 400, 'BadRequest', 'exec needs a websocket upgrade');
    }
    return status(res, 404, 'NotFound', 'the server could not find the requested resource');
  };

  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => execProtocols.find((p) => offered.has(p)) ?? false,
  });

  const server: Server = createServer({ cert: tls.certPem, key: tls.keyPem }, handle);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const entry = note(req, true);
    const reject = (code: number, message: string): void => {
      const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, code });
      socket.end(`HTTP/1.1 ${code} Refused\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    };
    if (!entry.authorized) return reject(401, `Unauthorized: ${entry.authError}`);
    if (entry.headerNames.some((h) => h.startsWith('impersonate-'))) return reject(403, 'impersonation is not allowed');
    const u = new URL(req.url ?? '/', 'https://standin');
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec$/.exec(u.pathname);
    if (!m || !(PODS[m[1]!] ?? []).includes(m[2]!)) return reject(404, 'not found');
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!execProtocols.some((p) => offered.includes(p))) return reject(400, `none of the offered subprotocols (${offered.join(', ')}) is supported: ${execProtocols.join(', ')}`);
    wss.handleUpgrade(req, socket, head, (ws) => {
      entry.protocol = ws.protocol;
      runExec(ws, u.searchParams, execStdin);
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    caPem: tls.caPem,
    caFile,
    cluster: opts.cluster,
    seen,
    execStdin,
    openStreams: () => streams.size,
    floodBytes: () => flooded,
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The channel protocol, server side: 0 stdin, 1 stdout, 2 stderr, 3 error/status, 255 close (v5). */
function runExec(ws: WebSocket, params: URLSearchParams, execStdin: string[]): void {
  const command = params.getAll('command');
  const send = (channel: number, data: string): void => ws.send(Buffer.concat([Buffer.from([channel]), Buffer.from(data)]));
  const finish = (exitCode: number): void => {
    const st =
      exitCode === 0
        ? { metadata: {}, status: 'Success' }
        : { metadata: {}, status: 'Failure', message: `command terminated with non-zero exit code: ${exitCode}`, reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] } };
    send(3, JSON.stringify(st));
    ws.close(1000);
  };
  if (command[0] === 'echo') {
    send(1, `${command.slice(1).join(' ')}\n`);
    return finish(0);
  }
  if (command[0] === 'cat' && params.get('stdin') === 'true') {
    let received = '';
    ws.on('message', (data: Buffer) => {
      const channel = data[0];
      if (channel === 0) {
        received += data.subarray(1).toString();
        send(1, data.subarray(1).toString());
      } else if (channel === 255 && data[1] === 0) {
        execStdin.push(received);
        finish(0);
      }
    });
    ws.on('close', () => {
      if (!execStdin.includes(received)) execStdin.push(received);
    });
    return;
  }
  send(2, `${command[0] ?? ''}: command not found\n`);
  finish(127);
}
