/**
 * The work airlock must do per operation, measured alone in one process with no sockets:
 * a lower bound on what airlock adds to its runtime's floor (bench/README.md, "the bound").
 * Each stage is airlock's own code, the same functions the gateway calls:
 *
 *  - Postgres statement (select-only, simple protocol): the guardrail's decision for a text
 *    seen before (the decision cache, plugins/postgres/guard) and the statement's one audit
 *    record (`pg.query` carrying the previous statement's outcome) through the audit pipeline,
 *    eight statements per event-loop turn as eight busy sessions give, awaiting `spooled`.
 *  - DynamoDB GetItem: verify the agent's SigV4 signature (core/aws/sigv4-inbound.ts, the
 *    signing key cached as the grant store caches it), parse the body, the plugin's decision
 *    (plugins/dynamodb/authorize.ts), the request record, re-serialise and sign with
 *    airlock's own key (core/aws/signing.ts), the response record; eight per turn.
 *
 * Not counted: framing, the relay, HTTP parsing, undici, Hono: the floor already pays for
 * those. Prints one JSON line: µs of process CPU (user + system) per operation, median of
 * the rounds, per stage and for the whole chain.
 *
 *   node --import tsx bench/work/measure.ts [operations per round] [rounds]
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpRequest } from '@smithy/protocol-http';
import { pino } from 'pino';
import { AuditPipeline } from '../../core/audit/pipeline.ts';
import type { AuditInput } from '../../core/audit/chain.ts';
import { createInboundVerifier } from '../../core/aws/sigv4-inbound.ts';
import { Signer } from '../../core/aws/signing.ts';
import type { Grant, GrantAuthenticator, InboundAwsRequest } from '../../core/plugin.ts';
import { authorizeDynamodb } from '../../plugins/dynamodb/authorize.ts';
import { dynamodbResourceSchema, type DynamodbScope } from '../../plugins/dynamodb/schema.ts';
import { SessionGuard } from '../../plugins/postgres/guard/index.ts';
import { loadStatementParser } from '../../plugins/postgres/split-statements.ts';
import { FakeGrants, makeScopedGrant } from '../../test/aws/fake-grants.ts';
import { presignGetItems } from '../http/presign.ts';

const perRound = Number(process.argv[2] ?? 80_000);
const rounds = Number(process.argv[3] ?? 5);
const TURN = 8;

type Stage = (i: number) => Promise<void> | void;

/** CPU µs per operation of `stage`, run `n` times in turns of eight (awaiting the turn's last promise). */
async function cpuPerOp(stage: Stage, n: number): Promise<number> {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i += TURN) {
    let last: Promise<void> | void = undefined;
    for (let j = 0; j < TURN; j++) last = stage(i + j);
    await last;
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round2 = (v: number) => Math.round(v * 100) / 100;

await loadStatementParser();
const dir = mkdtempSync(join(tmpdir(), 'airlock-work-'));
const { privateKey } = generateKeyPairSync('ed25519');
const pipeline = await AuditPipeline.open({ dataDir: dir, durability: 'buffered', gatewayId: 'work', signingKey: { privateKey, kid: 'k' }, log: pino({ level: 'silent' }) });

try {
  // --- Postgres statement -----------------------------------------------------------
  const identity = { agent: 'local:bench', grant: 'AGBENCH0000000000001', resource: 'bench', task: 'benchmark: pgbench through airlock' };
  const guard = new SessionGuard(false);
  // pgbench -S: one text shape, a new integer each time (the decision cache's integer shape).
  const sqlOf = (i: number) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${(i * 7919) % 800_000 + 1};`;
  const previous = new Array<number>(TURN).fill(0);
  const guardStage: Stage = (i) => {
    const d = guard.decide(sqlOf(i));
    if (!d.allowed) throw new Error(`guard refused a pgbench statement: ${d.message}`);
  };
  const recordStage: Stage = (i) => {
    const s = i % TURN;
    const done = [{ query: previous[s]!, rows: 1, ms: 0.123, commands: ['SELECT'], outcome: 'ok' }];
    const r = pipeline.append({ type: 'pg.query', ...identity, session: `s_${s}`, data: { sql: sqlOf(i), done }, outcome: 'ok' });
    previous[s] = r.seq;
    return r.spooled;
  };
  const statementStage: Stage = (i) => {
    guardStage(i);
    return recordStage(i);
  };

  // --- DynamoDB GetItem -------------------------------------------------------------
  const GRANT_ID = 'AGAAAAAAAAAAAAAAAAAA';
  const SECRET = 'grant-secret-0123456789abcdefghijklmnopqrs';
  const resource = dynamodbResourceSchema.parse({ type: 'dynamodb', region: 'us-east-1', tables: ['orders'], access: { read: ['GetItem'] } });
  const grant: Grant<DynamodbScope> = makeScopedGrant<DynamodbScope>({ id: GRANT_ID, resource: 'orders', scope: { tables: ['orders'], operations: ['GetItem'] } });
  const fake = new FakeGrants('dynamodb');
  fake.add(grant as Grant, SECRET);
  const verify = createInboundVerifier({ grants: cachingKeys(fake), regionOf: () => 'us-east-1' });
  const inbound = await agentSigned(GRANT_ID, SECRET);
  const body = Buffer.from(inbound.body).toString('utf8');
  const signer = new Signer();
  const airlockKeys = { accessKeyId: 'AKIAAIRLOCKBENCH0001', secretAccessKey: 'bench-secret-not-a-real-key' };
  const awsIdentity = { agent: grant.agent, grant: grant.id, resource: grant.resource, task: grant.task };

  const verifyStage: Stage = async () => {
    await verify(inbound, { service: 'dynamodb' });
  };
  const decideStage = () => {
    const parsed = JSON.parse(Buffer.from(inbound.body).toString('utf8')) as Record<string, unknown>;
    return { parsed, decision: authorizeDynamodb({ operation: 'GetItem', body: parsed, grant, resourceName: 'orders', resource }) };
  };
  const signStage = (parsed: Record<string, unknown>) => {
    const request = new HttpRequest({ method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: 8000, path: '/', headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.GetItem', host: '127.0.0.1:8000' }, body: JSON.stringify(parsed) });
    if (signer.signDirect(request, { service: 'dynamodb', region: 'us-east-1', credentials: airlockKeys }) === undefined) throw new Error('no direct signature');
  };
  const requestRecord = (data: Record<string, unknown>): AuditInput => ({ type: 'aws.request', ...awsIdentity, data, outcome: 'ok' });
  const responseRecord = (seq: number): AuditInput => ({ type: 'aws.response', ...awsIdentity, data: { service: 'dynamodb', operation: 'GetItem', status: 200, ms: 0.412, requestSeq: seq }, outcome: 'ok', lazy: true });
  const getItemStage: Stage = async () => {
    await verify(inbound, { service: 'dynamodb' });
    const { parsed, decision } = decideStage();
    const request = pipeline.append(requestRecord(decision.record.data));
    await request.spooled;
    signStage(parsed);
    await pipeline.append(responseRecord(request.seq)).spooled;
  };
  const { decision: sample } = decideStage();
  const recordsStage: Stage = () => {
    const request = pipeline.append(requestRecord(sample.record.data));
    return pipeline.append(responseRecord(request.seq)).spooled;
  };

  const stages: Record<string, Stage> = {
    'statement.guard': guardStage,
    'statement.record': recordStage,
    statement: statementStage,
    'getitem.verify': verifyStage,
    'getitem.decide': () => void decideStage(),
    'getitem.sign': () => signStage(JSON.parse(body) as Record<string, unknown>),
    'getitem.records': recordsStage,
    getitem: getItemStage,
  };
  for (const stage of Object.values(stages)) await cpuPerOp(stage, 4000); // warm-up
  const samples: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    for (const [name, stage] of Object.entries(stages)) (samples[name] ??= []).push(await cpuPerOp(stage, perRound));
  }
  const out: Record<string, number> = {};
  for (const [name, xs] of Object.entries(samples)) out[name] = round2(median(xs));
  process.stdout.write(JSON.stringify({ operationsPerRound: perRound, rounds, cpuUsPerOperation: out }) + '\n');
} finally {
  await pipeline.close();
  rmSync(dir, { recursive: true, force: true });
}

/** The grant store keeps each day's signing key (core/grants/authenticator.ts); so does this. */
function cachingKeys(grants: FakeGrants): GrantAuthenticator {
  const keys = new Map<string, ReturnType<GrantAuthenticator['sigv4SigningKey']>>();
  return Object.assign(Object.create(grants) as GrantAuthenticator, {
    sigv4SigningKey(grantId: string, date: string, region: string, service: string) {
      const cacheKey = `${grantId}/${date}/${region}/${service}`;
      let hit = keys.get(cacheKey);
      if (hit === undefined) keys.set(cacheKey, (hit = grants.sigv4SigningKey(grantId, date, region, service)));
      return hit;
    },
  });
}

/** A GetItem as the SDK signs it with the grant's key (bench/http/presign.ts, as wrk sends it), as the front hands it on. */
async function agentSigned(accessKeyId: string, secretAccessKey: string): Promise<InboundAwsRequest> {
  const [signed] = await presignGetItems({ url: 'http://127.0.0.1:8080/dynamodb', accessKeyId, secretAccessKey, region: 'us-east-1', table: 'orders', count: 1 });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed!.headers)) headers[k.toLowerCase()] = v;
  return { method: 'POST', path: '/dynamodb', query: '', headers, body: Buffer.from(signed!.body) };
}
