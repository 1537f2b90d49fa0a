/**
 * S3 sink against a real moto with signature and IAM enforcement on. airlock's identity is
 * a moto IAM user allowed only s3:PutObject and s3:AbortMultipartUpload; reading back is
 * done with the harness's admin keys.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import {
  S3Client,
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
} from '@aws-sdk/client-s3';
import { join } from 'node:path';
import { startMoto, type Moto, type MotoKeys } from '../harness/moto.ts';
import s3Sink, { createS3Sink, s3SinkSchema } from '../../audit-sinks/s3/index.ts';
import { objectKey } from '../../audit-sinks/s3/object-key.ts';
import type { AuditRecord } from '../../core/plugin.ts';
import { verifyAuditFiles } from '../../core/audit/verify.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { RecordSource, downloadObjects, drainBesideFileSink, gunzipLines, listKeys as listKeysOf, sinkContext } from './aws-sink-context.ts';
import { TempDirs, makeKey } from '../audit/helpers.ts';
import { runSinkConformance } from './conformance.ts';

const execFileAsync = promisify(execFile);

const SINK_POLICY = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: ['s3:PutObject', 's3:AbortMultipartUpload'], Resource: '*' }],
};

// One moto for the whole file (this suite and the conformance suite below).
let moto: Moto;
let sinkKeys: MotoKeys;
let admin: S3Client;
const dirs = new TempDirs();

before(async () => {
  moto = await startMoto();
  admin = new S3Client({ region: 'us-east-1', endpoint: moto.endpoint, forcePathStyle: true, credentials: moto.adminKeys() });
  for (const Bucket of ['audit', 'audit-big', 'audit-kms', 'audit-e2e', 'audit-conformance']) await admin.send(new CreateBucketCommand({ Bucket }));
  await admin.send(new CreateBucketCommand({ Bucket: 'audit-locked', ObjectLockEnabledForBucket: true }));
  sinkKeys = await moto.createUser('airlock-s3', SINK_POLICY);
  await moto.enableAuth();
});

after(async () => {
  admin?.destroy();
  await moto?.stop();
  await dirs.cleanup();
});

describe('s3 audit sink (moto, auth enforced)', () => {

  const listKeys = (bucket: string, prefix = ''): Promise<string[]> => listKeysOf(admin, bucket, prefix);

  async function download(bucket: string, key: string): Promise<string[]> {
    const got = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    const text = gunzipSync(bytes).toString('utf8');
    assert.ok(text.endsWith('\n'), 'object ends with a newline');
    return text.slice(0, -1).split('\n');
  }

  it('drains a real audit pipeline: same lines as the file sink, and the objects verify', async () => {
    const dataDir = await dirs.make();
    const key = makeKey();
    const ctx = sinkContext({ endpoint: moto.endpoint, keys: sinkKeys, gatewayId: 'gw-e2e', dataDir });
    const fileLines = await drainBesideFileSink({ dataDir, key, ctx, sink: s3Sink, config: { type: 's3', bucket: 'audit-e2e', prefix: 'airlock/' } });

    const downloaded = await dirs.make('airlock-s3-download-');
    const paths = (await downloadObjects(admin, 'audit-e2e', 'airlock/', downloaded)).sort();
    assert.ok(paths.length >= 2, `several objects (${paths.length})`);
    assert.deepEqual(await gunzipLines(paths), fileLines, 'S3 holds the file sink\'s lines, same order and count');
    // Any order of files verifies: the verifier sorts by seq.
    const result = await verifyAuditFiles([...paths].reverse(), { publicKeys: [key.publicJwk], gatewayId: 'gw-e2e' });
    assert.equal(result.failure, undefined);
    assert.equal(result.ok, true);
    assert.equal(result.fromGenesis, true);
    assert.equal(result.records, fileLines.length);
    assert.equal(result.duplicates, 0);
    assert.ok(result.checkpoints >= 7, `checkpoints verified: ${result.checkpoints}`);
    assert.equal(result.unsignedTail, 0, 'the closing checkpoint is in S3 too');

    // And as an operator would: the CLI on the downloaded objects, in any order.
    const keyFile = join(downloaded, 'gateway.pub.jwk');
    await writeFile(keyFile, JSON.stringify(key.publicJwk));
    const cli = await execFileAsync(join(process.cwd(), 'airlock'), ['audit', 'verify', ...[...paths].reverse(), '--key', keyFile]);
    assert.match(cli.stdout, /^ok: /);
  });

  it('validates its config strictly and names its cursor', () => {
    assert.equal(s3SinkSchema.safeParse({ type: 's3', bucket: 'audit', prefix: 'airlock/' }).success, true);
    assert.equal(s3SinkSchema.safeParse({ type: 's3', bucket: 'audit', bogus: 1 }).success, false);
    assert.equal(s3SinkSchema.safeParse({ type: 's3', bucket: 'Bad_Bucket' }).success, false);
    assert.equal(s3SinkSchema.safeParse({ type: 's3', bucket: 'audit', objectLock: { mode: 'SOFT', retainDays: 1 } }).success, false);
    assert.equal(s3Sink.cursorId({ type: 's3', bucket: 'audit', prefix: '/airlock' } as never), 's3:audit/airlock/');
    assert.equal(s3Sink.cursorId({ type: 's3', bucket: 'audit' } as never), 's3:audit/');
  });

  it('stores each batch as a gzip JSONL object with a deterministic, sortable key', async () => {
    const source = new RecordSource();
    const sink = await createS3Sink({ type: 's3', bucket: 'audit', prefix: 'airlock/' }, sinkContext({ endpoint: moto.endpoint, keys: sinkKeys }));
    const at = new Date('2026-11-25T23:59:59.000Z');
    const batches = [source.next(3, { at }), source.next(1, { at }), source.next(7, { at })];
    for (const b of batches) await sink.deliver(b);
    // A retried batch (at-least-once) overwrites its own object.
    await sink.deliver(batches[1]!);
    await sink.close?.();

    const keys = await listKeys('audit', 'airlock/');
    assert.deepEqual(keys, [
      'airlock/2026/11/25/gw-test0001/0000000000000001-0000000000000003.jsonl.gz',
      'airlock/2026/11/25/gw-test0001/0000000000000004-0000000000000004.jsonl.gz',
      'airlock/2026/11/25/gw-test0001/0000000000000005-0000000000000011.jsonl.gz',
    ]);
    const stored: string[] = [];
    for (const key of keys) stored.push(...(await download('audit', key)));
    assert.deepEqual(stored, source.lines, 'same lines, same order, no duplicates');
    const head = await admin.send(new HeadObjectCommand({ Bucket: 'audit', Key: keys[0]! }));
    assert.equal(head.ContentEncoding, 'gzip');
  });

  it('splits a batch larger than maxBatch into several objects', async () => {
    const source = new RecordSource();
    const sink = await createS3Sink(
      { type: 's3', bucket: 'audit', prefix: 'split', maxBatch: 4 },
      sinkContext({ endpoint: moto.endpoint, keys: sinkKeys }),
    );
    await sink.deliver(source.next(10, { at: new Date('2026-01-02T03:04:05Z') }));
    const keys = await listKeys('audit', 'split/');
    assert.deepEqual(
      keys.map((k) => k.split('/').pop()),
      ['0000000000000001-0000000000000004.jsonl.gz', '0000000000000005-0000000000000008.jsonl.gz', '0000000000000009-0000000000000010.jsonl.gz'],
    );
    assert.ok(keys.every((k) => k.startsWith('split/2026/01/02/gw-test0001/')));
    const stored: string[] = [];
    for (const key of keys) stored.push(...(await download('audit', key)));
    assert.deepEqual(stored, source.lines);
  });

  it('uses a multipart upload above the threshold', async () => {
    const source = new RecordSource();
    const limits = { multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024 };
    const sink = await createS3Sink({ type: 's3', bucket: 'audit-big' }, sinkContext({ endpoint: moto.endpoint, keys: sinkKeys }), { limits });
    // Incompressible payloads so the gzip object really exceeds two parts.
    const batch = source.next(1400, { data: () => ({ blob: randomBytes(8192).toString('base64') }) });
    await sink.deliver(batch);
    const [key] = await listKeys('audit-big');
    assert.ok(key);
    const head = await admin.send(new HeadObjectCommand({ Bucket: 'audit-big', Key: key }));
    assert.ok((head.ContentLength ?? 0) > 2 * limits.partSize, `object is ${head.ContentLength} bytes`);
    assert.match(head.ETag ?? '', /-3"?$/, 'multipart ETag names 3 parts');
    assert.deepEqual(await download('audit-big', key), source.lines);
  });

  it('passes SSE-KMS and object-lock retention through', async () => {
    const source = new RecordSource();
    const ctx = sinkContext({ endpoint: moto.endpoint, keys: sinkKeys });
    const kms = await createS3Sink({ type: 's3', bucket: 'audit-kms', sseKmsKeyId: 'alias/airlock-audit' }, ctx);
    await kms.deliver(source.next(2));
    const [kmsKey] = await listKeys('audit-kms');
    const kmsHead = await admin.send(new HeadObjectCommand({ Bucket: 'audit-kms', Key: kmsKey! }));
    assert.equal(kmsHead.ServerSideEncryption, 'aws:kms');
    assert.equal(kmsHead.SSEKMSKeyId, 'alias/airlock-audit');

    const locked = await createS3Sink({ type: 's3', bucket: 'audit-locked', objectLock: { mode: 'COMPLIANCE', retainDays: 30 } }, ctx);
    const before = Date.now();
    await locked.deliver(source.next(2));
    const [lockedKey] = await listKeys('audit-locked');
    const lockHead = await admin.send(new HeadObjectCommand({ Bucket: 'audit-locked', Key: lockedKey! }));
    assert.equal(lockHead.ObjectLockMode, 'COMPLIANCE');
    const until = lockHead.ObjectLockRetainUntilDate?.getTime() ?? 0;
    const thirtyDays = 30 * 24 * 3600 * 1000;
    assert.ok(until >= before + thirtyDays - 2000 && until <= Date.now() + thirtyDays + 2000, `retain until ${lockHead.ObjectLockRetainUntilDate?.toISOString()}`);
  });

  it('fails the delivery (for the runner to retry) on a wrong key or a missing permission', async () => {
    const source = new RecordSource();
    const batch = source.next(2);
    const wrong = await createS3Sink(
      { type: 's3', bucket: 'audit', prefix: 'wrong' },
      sinkContext({ endpoint: moto.endpoint, keys: { accessKeyId: sinkKeys.accessKeyId, secretAccessKey: 'wrong-secret' } }),
    );
    await assert.rejects(wrong.deliver(batch), (e: Error) => e.name === 'SignatureDoesNotMatch');
    const readOnly = await moto.createUser('airlock-s3-readonly', {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['s3:GetObject'], Resource: '*' }],
    });
    const denied = await createS3Sink({ type: 's3', bucket: 'audit', prefix: 'wrong' }, sinkContext({ endpoint: moto.endpoint, keys: readOnly }));
    await assert.rejects(denied.deliver(batch), (e: Error) => e.name === 'AccessDenied');
    assert.deepEqual(await listKeys('audit', 'wrong/'), []);
  });

  it('refuses a gateway id that could escape its key segment', async () => {
    await assert.rejects(
      createS3Sink({ type: 's3', bucket: 'audit' }, sinkContext({ endpoint: moto.endpoint, keys: sinkKeys, gatewayId: '../x' })),
      /cannot be used in an object key/,
    );
    assert.throws(() => objectKey('', 'gw', []), /empty batch/);
  });
});

let conformanceRun = 0;
runSinkConformance('s3 (moto, auth enforced)', async () => {
  const prefix = `conformance-${++conformanceRun}/`;
  const sink = await createS3Sink({ type: 's3', bucket: 'audit-conformance', prefix }, sinkContext({ endpoint: moto.endpoint, keys: sinkKeys }));
  return {
    sink,
    async readBack(): Promise<AuditRecord[]> {
      const dir = await dirs.make('airlock-s3-conformance-');
      // Keys sort by seq range: the bucket's own order.
      const paths = (await downloadObjects(admin, 'audit-conformance', prefix, dir)).sort();
      return (await gunzipLines(paths)).map((line) => JSON.parse(line) as AuditRecord);
    },
    cleanup: async () => undefined,
  };
});
