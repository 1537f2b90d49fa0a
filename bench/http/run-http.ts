/**
 * The HTTP part: the same SigV4-signed DynamoDB GetItem load (wrk, 8 connections, one
 * thread) sent
 *   - direct to a responder that answers like DynamoDB (nginx returning fixed JSON),
 *   - through nginx `proxy_pass` to it (the floor for a proxy: no checks, no signing),
 *   - through the Node floor (bench/floor-server.ts: Hono + undici forwarding, airlock's
 *     stack without airlock's work), to tell the runtime's cost from airlock's,
 *   - through airlock to it (verify SigV4 + scope + audit + re-sign + forward), buffered and
 *     strict,
 * alternating targets round by round; plus one end-to-end figure through airlock to moto
 * (DynamoDB with signature and IAM enforcement) beside moto direct.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { startMoto, type Moto } from '../../test/harness/moto.ts';
import { startGatewayProcess, type GatewayProcess } from '../lib/gateway-process.ts';
import { startFloor } from '../lib/floor-process.ts';
import { machineCpuTimes, stealPercent } from '../lib/proc.ts';
import { quietest } from '../lib/quiet.ts';
import { median, ratio, ROTATED_ORDER, rotated, round } from '../lib/stats.ts';
import { startProxy, startResponder, type Nginx } from './nginx.ts';
import { presignGetItems, sendOnce, wrkScript, type SignedRequest } from './presign.ts';
import { runWrk, type WrkRun } from './wrk.ts';

export const HTTP_TARGETS = ['direct', 'nginx', 'node-floor', 'airlock-buffered', 'airlock-strict'] as const;
export type HttpTargetName = (typeof HTTP_TARGETS)[number];

const AGENT = 'bench';
const REGION = 'us-east-1';
const TABLE = 'orders';
const CONNECTIONS = 8;
const POOL = 500;
/** moto is slow to load: fewer items there, cycled the same way. */
const MOTO_ITEMS = 100;
/** airlock's own (fake) AWS identity for the responder, which checks no signature. */
const AIRLOCK_KEYS = { AWS_ACCESS_KEY_ID: 'AKIAAIRLOCKBENCH0001', AWS_SECRET_ACCESS_KEY: 'bench-secret-not-a-real-key', AWS_REGION: REGION };

export interface HttpRunMeasure {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** CPU of the proxy process(es) per request (absent for direct). */
  cpuUsPerRequest?: number;
  auditRecordsPerRequest?: number;
  /** The machine's steal time during the run, percent of its CPU time (lib/proc.ts; absent in results before it was measured). */
  stealPct?: number;
  /** Runs taken for this figure: a run with steal above lib/quiet.ts's limit is taken again and the quietest kept. */
  attempts?: number;
}

export interface HttpPartResult {
  settings: { seconds: number; rounds: number; connections: number; wrkThreads: number; signedPool: number; nginxWorkers: number; auditSink: string; order?: string | undefined };
  runs: Record<HttpTargetName, HttpRunMeasure[]>;
  median: Record<HttpTargetName, HttpRunMeasure>;
  ratios: {
    bufferedVsNginx: number;
    strictVsNginx: number;
    bufferedAddedP50Ms: number;
    strictAddedP50Ms: number;
    nginxAddedP50Ms: number;
    nodeFloorVsNginx: number;
    bufferedVsNodeFloor: number;
    strictVsNodeFloor: number;
    /** p50 over direct's, both at one connection. */
    bufferedAddedP50MsOneConnection: number;
    strictAddedP50MsOneConnection: number;
  };
  /** Medians of one round at a single connection. */
  oneConnection: Record<HttpTargetName, HttpRunMeasure>;
  moto?: { direct: HttpRunMeasure; airlock: HttpRunMeasure; ratio: number } | undefined;
}

export interface HttpPartOptions {
  nginx: string;
  wrk: string;
  seconds: number;
  rounds: number;
  profileDir?: string | undefined;
  progress: (line: string) => void;
  /** `--quick`: skip the end-to-end moto figure. */
  skipMoto?: boolean | undefined;
}

function dynamoConfig(durability: 'strict' | 'buffered', endpoint: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    gateway: { http: { listen: '127.0.0.1:0' } },
    aws: { region: REGION, endpoints: { dynamodb: endpoint, sts: endpoint } },
    resources: {
      orders: { type: 'dynamodb', region: REGION, tables: [TABLE], access: { read: ['GetItem'] }, ...extra },
    },
    policies: [{ agents: [`local:${AGENT}`], resources: ['orders'], access: ['read'], maxTtl: '4h', approval: 'none' }],
    audit: { durability, sinks: [{ type: 'file', path: '{dataDir}/audit/audit.jsonl' }] },
  };
}

interface Target {
  url: string;
  keys: { accessKeyId: string; secretAccessKey: string };
  cpu?: () => number;
  gateway?: GatewayProcess;
}

export async function runHttpPart(o: HttpPartOptions): Promise<HttpPartResult> {
  const started: Array<{ stop(): Promise<void> }> = [];
  const scratch = mkdtempSync(join(tmpdir(), 'airlock-bench-wrk-'));
  try {
    o.progress('http: starting nginx responder, nginx proxy and two airlock gateways');
    const responder: Nginx = await startResponder(o.nginx);
    started.push(responder);
    const proxy: Nginx = await startProxy(o.nginx, responder.port);
    started.push(proxy);
    const floor = await startFloor('http', `${responder.url}/`);
    started.push(floor);
    const gateways = {} as Record<'buffered' | 'strict', GatewayProcess>;
    const grants = {} as Record<'buffered' | 'strict', { accessKeyId: string; secretAccessKey: string }>;
    for (const durability of ['buffered', 'strict'] as const) {
      const gw = await startGatewayProcess({ name: `http-${durability}`, config: dynamoConfig(durability, responder.url), agents: [AGENT], env: AIRLOCK_KEYS, profileDir: o.profileDir });
      started.push(gw);
      gateways[durability] = gw;
      const g = await gw.grant(AGENT, { resource: 'orders', access: 'read', ttl: '3h', task: 'benchmark: GetItem through airlock' });
      grants[durability] = { accessKeyId: g.id, secretAccessKey: g.secret };
    }
    const fakeAgentKeys = { accessKeyId: 'AKIAAGENTBENCH000001', secretAccessKey: 'unchecked-by-the-responder' };
    const targets: Record<HttpTargetName, Target> = {
      direct: { url: `${responder.url}/`, keys: fakeAgentKeys },
      nginx: { url: `${proxy.url}/dynamodb`, keys: fakeAgentKeys, cpu: () => proxy.cpuMicros() },
      'node-floor': { url: `http://127.0.0.1:${floor.port}/dynamodb`, keys: fakeAgentKeys, cpu: () => floor.cpuMicros() },
      'airlock-buffered': { url: `${gateways.buffered.url}/dynamodb`, keys: grants.buffered, cpu: () => gateways.buffered.cpuMicros(), gateway: gateways.buffered },
      'airlock-strict': { url: `${gateways.strict.url}/dynamodb`, keys: grants.strict, cpu: () => gateways.strict.cpuMicros(), gateway: gateways.strict },
    };

    // Warm-up, not measured: JIT-compiled paths and open upstream connections for every target
    // (3 s each, as the pg part: one second left the first round's airlock runs still warming).
    for (const name of HTTP_TARGETS) await measure({ ...o, seconds: Math.min(3, o.seconds) }, scratch, name, targets[name]);
    const runs = Object.fromEntries(HTTP_TARGETS.map((t) => [t, [] as HttpRunMeasure[]])) as Record<HttpTargetName, HttpRunMeasure[]>;
    for (let round = 0; round < o.rounds; round++) {
      for (const name of rotated(HTTP_TARGETS, round)) {
        const m = await quietest(
          () => measure(o, scratch, name, targets[name], round === 0),
          (noisy, n) => o.progress(`http: round ${round + 1} ${name}: steal ${round1(noisy.stealPct ?? 0)}% in attempt ${n}, taking it again`),
        );
        runs[name].push(m);
        o.progress(
          `http: round ${round + 1} ${name}: ${round1(m.rps)} req/s, p50 ${m.p50Ms.toFixed(3)} ms, p99 ${m.p99Ms.toFixed(3)} ms` +
            (m.cpuUsPerRequest === undefined ? '' : `, ${round1(m.cpuUsPerRequest)} µs CPU/req`) +
            `, steal ${round1(m.stealPct ?? 0)}%` + (m.attempts! > 1 ? ` (quietest of ${m.attempts})` : ''),
        );
      }
    }
    const med = Object.fromEntries(HTTP_TARGETS.map((t) => [t, medianOf(runs[t])])) as Record<HttpTargetName, HttpRunMeasure>;

    // One connection: latency without queueing (at 8 connections a saturated process's p50 is mostly wait).
    const single = {} as Record<HttpTargetName, HttpRunMeasure>;
    for (const name of HTTP_TARGETS) {
      single[name] = rounded(
        await quietest(
          () => measure(o, scratch, name, targets[name], false, POOL, 1),
          (noisy, n) => o.progress(`http: 1 connection ${name}: steal ${round1(noisy.stealPct ?? 0)}% in attempt ${n}, taking it again`),
        ),
      );
      o.progress(`http: 1 connection ${name}: p50 ${single[name].p50Ms.toFixed(3)} ms, p99 ${single[name].p99Ms.toFixed(3)} ms, steal ${single[name].stealPct ?? 0}%`);
    }
    for (const s of started.splice(0).reverse()) await s.stop();

    const moto = o.skipMoto ? undefined : await motoFigure(o, scratch);
    return {
      settings: {
        seconds: o.seconds,
        rounds: o.rounds,
        connections: CONNECTIONS,
        wrkThreads: 1,
        signedPool: POOL,
        nginxWorkers: 1,
        auditSink: 'file sink (the spool drained to a JSONL file by the same process)',
        order: ROTATED_ORDER,
      },
      runs,
      median: med,
      ratios: {
        bufferedVsNginx: ratio(med['airlock-buffered'].rps, med.nginx.rps),
        strictVsNginx: ratio(med['airlock-strict'].rps, med.nginx.rps),
        bufferedAddedP50Ms: round(med['airlock-buffered'].p50Ms - med.direct.p50Ms, 3),
        strictAddedP50Ms: round(med['airlock-strict'].p50Ms - med.direct.p50Ms, 3),
        nginxAddedP50Ms: round(med.nginx.p50Ms - med.direct.p50Ms, 3),
        nodeFloorVsNginx: ratio(med['node-floor'].rps, med.nginx.rps),
        bufferedVsNodeFloor: ratio(med['airlock-buffered'].rps, med['node-floor'].rps),
        strictVsNodeFloor: ratio(med['airlock-strict'].rps, med['node-floor'].rps),
        bufferedAddedP50MsOneConnection: round(single['airlock-buffered'].p50Ms - single.direct.p50Ms, 3),
        strictAddedP50MsOneConnection: round(single['airlock-strict'].p50Ms - single.direct.p50Ms, 3),
      },
      oneConnection: single,
      moto,
    };
  } finally {
    for (const s of started.reverse()) await s.stop().catch((e: unknown) => o.progress(`http: stop failed: ${String(e)}`));
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Sign a fresh pool, check one request answers with the item, then run wrk. */
async function measure(o: HttpPartOptions, scratch: string, name: string, t: Target, profile = false, poolSize = POOL, connections = CONNECTIONS): Promise<HttpRunMeasure> {
  const pool: SignedRequest[] = await presignGetItems({ url: t.url, ...t.keys, region: REGION, table: TABLE, count: poolSize });
  const probe = await sendOnce(pool[0]!);
  if (probe.status !== 200 || !probe.body.includes('"Item"')) {
    throw new Error(`http: ${name} answered the probe GetItem with HTTP ${probe.status}: ${probe.body.slice(0, 300)}`);
  }
  const script = join(scratch, `${name}.lua`);
  writeFileSync(script, wrkScript(pool));
  const machine0 = machineCpuTimes();
  const cpu0 = t.cpu?.() ?? 0;
  const seq0 = t.gateway ? await t.gateway.metric('airlock_audit_last_seq') : 0;
  const run = () => runWrk(o.wrk, t.url, script, { connections, seconds: o.seconds });
  const r: WrkRun = profile && t.gateway ? await t.gateway.profile('getitem', run) : await run();
  const cpu1 = t.cpu?.() ?? 0;
  const stealPct = stealPercent(machine0, machineCpuTimes());
  const seq1 = t.gateway ? await t.gateway.metric('airlock_audit_last_seq') : 0;
  if (r.non2xx > 0 || r.socketErrors > 0) {
    throw new Error(`http: ${name}: ${r.non2xx} non-2xx responses and ${r.socketErrors} socket errors in ${r.requests} requests; not a valid measure`);
  }
  const m: HttpRunMeasure = { rps: r.rps, p50Ms: r.p50Ms, p99Ms: r.p99Ms, requests: r.requests, stealPct };
  if (t.cpu) m.cpuUsPerRequest = (cpu1 - cpu0) / r.requests;
  if (t.gateway) {
    m.auditRecordsPerRequest = (seq1 - seq0) / r.requests;
    if (m.auditRecordsPerRequest < 1) throw new Error(`http: ${name} wrote ${seq1 - seq0} audit records for ${r.requests} requests`);
  }
  return m;
}

/** End to end: airlock (strict) in front of moto with signature and IAM enforcement on. */
async function motoFigure(o: HttpPartOptions, scratch: string): Promise<HttpPartResult['moto']> {
  o.progress('http: starting moto (signature + IAM enforcement) for the end-to-end figure');
  const moto: Moto = await startMoto();
  let gw: GatewayProcess | undefined;
  const admin = new DynamoDBClient({ endpoint: moto.endpoint, region: REGION, credentials: moto.adminKeys(), maxAttempts: 1 });
  try {
    await admin.send(
      new CreateTableCommand({
        TableName: TABLE,
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    for (let i = 0; i < MOTO_ITEMS; i++) {
      await admin.send(new PutItemCommand({ TableName: TABLE, Item: { id: { S: `o-${1000 + i}` }, customer: { S: 'acme' }, total: { N: String(i) } } }));
    }
    const user = await moto.createUser('airlock-bench', {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['dynamodb:GetItem'], Resource: '*' }],
    });
    await moto.enableAuth();
    gw = await startGatewayProcess({
      name: 'http-moto',
      config: dynamoConfig('strict', moto.endpoint, { accountId: moto.accountId }),
      agents: [AGENT],
      env: { AWS_ACCESS_KEY_ID: user.accessKeyId, AWS_SECRET_ACCESS_KEY: user.secretAccessKey, AWS_REGION: REGION },
      profileDir: o.profileDir,
    });
    const g = await gw.grant(AGENT, { resource: 'orders', access: 'read', ttl: '1h', task: 'benchmark: GetItem through airlock to moto' });
    const gateway = gw;
    const direct = await measure(o, scratch, 'moto-direct', { url: `${moto.endpoint}/`, keys: { accessKeyId: user.accessKeyId, secretAccessKey: user.secretAccessKey } }, false, MOTO_ITEMS);
    o.progress(`http: moto direct: ${round1(direct.rps)} req/s, p50 ${direct.p50Ms.toFixed(3)} ms`);
    const airlock = await measure(o, scratch, 'moto-airlock', {
      url: `${gateway.url}/dynamodb`,
      keys: { accessKeyId: g.id, secretAccessKey: g.secret },
      cpu: () => gateway.cpuMicros(),
      gateway,
    }, true, MOTO_ITEMS);
    o.progress(`http: moto through airlock (strict): ${round1(airlock.rps)} req/s, p50 ${airlock.p50Ms.toFixed(3)} ms`);
    return { direct: rounded(direct), airlock: rounded(airlock), ratio: ratio(airlock.rps, direct.rps) };
  } finally {
    admin.destroy();
    await gw?.stop();
    await moto.stop();
  }
}

function medianOf(runs: HttpRunMeasure[]): HttpRunMeasure {
  const pick = (f: (r: HttpRunMeasure) => number | undefined): number | undefined => {
    const values = runs.map(f).filter((v): v is number => v !== undefined);
    return values.length === 0 ? undefined : median(values);
  };
  return rounded({
    rps: pick((r) => r.rps)!,
    p50Ms: pick((r) => r.p50Ms)!,
    p99Ms: pick((r) => r.p99Ms)!,
    requests: pick((r) => r.requests)!,
    ...(pick((r) => r.cpuUsPerRequest) === undefined ? {} : { cpuUsPerRequest: pick((r) => r.cpuUsPerRequest)! }),
    ...(pick((r) => r.auditRecordsPerRequest) === undefined ? {} : { auditRecordsPerRequest: pick((r) => r.auditRecordsPerRequest)! }),
    ...(pick((r) => r.stealPct) === undefined ? {} : { stealPct: pick((r) => r.stealPct)! }),
  });
}

function rounded(m: HttpRunMeasure): HttpRunMeasure {
  const out: HttpRunMeasure = { rps: round(m.rps, 1), p50Ms: round(m.p50Ms, 3), p99Ms: round(m.p99Ms, 3), requests: m.requests };
  if (m.cpuUsPerRequest !== undefined) out.cpuUsPerRequest = round(m.cpuUsPerRequest, 1);
  if (m.auditRecordsPerRequest !== undefined) out.auditRecordsPerRequest = round(m.auditRecordsPerRequest, 2);
  if (m.stealPct !== undefined) out.stealPct = round(m.stealPct, 1);
  if (m.attempts !== undefined) out.attempts = m.attempts;
  return out;
}

function round1(v: number): number {
  return round(v, 1);
}
