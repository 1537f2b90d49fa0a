/**
 * Self-test of the moto harness: with auth enforcement on, moto refuses unsigned and
 * wrongly signed requests, lets a user do what its inline policy allows and refuses the
 * rest; the relay can cut moto off and bring it back with its state.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  S3Client,
  CreateBucketCommand,
  DeleteBucketCommand,
  ListBucketsCommand,
  PutObjectCommand,
  GetObjectCommand,
} from '@aws-sdk/client-s3';
import { startMoto, type Moto, type MotoKeys } from './moto.ts';

function s3(moto: Moto, keys: { accessKeyId: string; secretAccessKey: string }): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint: moto.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: keys.accessKeyId, secretAccessKey: keys.secretAccessKey },
    maxAttempts: 1,
  });
}

function errorName(e: unknown): string {
  return e instanceof Error ? e.name : String(e);
}

describe('moto harness', () => {
  let moto: Moto;
  let writer: MotoKeys;

  before(async () => {
    moto = await startMoto({ interruptible: true });
    await s3(moto, moto.adminKeys()).send(new CreateBucketCommand({ Bucket: 'harness-bucket' }));
    writer = await moto.createUser('writer', {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['s3:PutObject', 's3:GetObject', 's3:ListAllMyBuckets'], Resource: '*' }],
    });
    await moto.enableAuth();
  });

  after(async () => {
    await moto?.stop();
  });

  it('refuses an unsigned request once auth is on', async () => {
    const res = await fetch(`${moto.endpoint}/harness-bucket/x.txt`, { method: 'PUT', body: 'unsigned' });
    await res.arrayBuffer();
    assert.ok(res.status >= 400, `unsigned PUT answered ${res.status}`);
    const read = s3(moto, writer).send(new GetObjectCommand({ Bucket: 'harness-bucket', Key: 'x.txt' }));
    await assert.rejects(read, (e: unknown) => errorName(e) === 'NoSuchKey');
  });

  it('refuses a wrong secret and an unknown key', async () => {
    const wrongSecret = s3(moto, { accessKeyId: writer.accessKeyId, secretAccessKey: 'not-the-secret' });
    await assert.rejects(wrongSecret.send(new ListBucketsCommand({})), (e: unknown) => errorName(e) === 'SignatureDoesNotMatch');
    const unknown = s3(moto, { accessKeyId: 'AKIAUNKNOWNKEY000000', secretAccessKey: 'x' });
    await assert.rejects(unknown.send(new ListBucketsCommand({})), (e: unknown) => /InvalidAccessKeyId|InvalidClientTokenId/.test(errorName(e)));
  });

  it("allows the user's own actions and refuses the others", async () => {
    const client = s3(moto, writer);
    await client.send(new PutObjectCommand({ Bucket: 'harness-bucket', Key: 'ok.txt', Body: 'hello' }));
    const got = await client.send(new GetObjectCommand({ Bucket: 'harness-bucket', Key: 'ok.txt' }));
    assert.equal(await got.Body?.transformToString(), 'hello');
    const listed = await client.send(new ListBucketsCommand({}));
    assert.ok(listed.Buckets?.some((b) => b.Name === 'harness-bucket'));
    await assert.rejects(client.send(new DeleteBucketCommand({ Bucket: 'harness-bucket' })), (e: unknown) => errorName(e) === 'AccessDenied');
    await assert.rejects(client.send(new CreateBucketCommand({ Bucket: 'other-bucket' })), (e: unknown) => errorName(e) === 'AccessDenied');
  });

  it('suspend cuts moto off and resume brings it back with its state', async () => {
    const client = s3(moto, writer);
    await moto.suspend();
    await assert.rejects(client.send(new GetObjectCommand({ Bucket: 'harness-bucket', Key: 'ok.txt' })), (e: unknown) =>
      /ECONNREFUSED|ECONNRESET|socket hang up/.test(`${errorName(e)} ${String((e as { code?: string }).code)} ${String(e)}`),
    );
    await moto.resume();
    const got = await client.send(new GetObjectCommand({ Bucket: 'harness-bucket', Key: 'ok.txt' }));
    assert.equal(await got.Body?.transformToString(), 'hello');
  });

  it('restart gives a fresh moto on the same port (state lost, auth off)', async () => {
    const before = moto.endpoint;
    await moto.restart();
    assert.equal(moto.endpoint, before);
    const admin = s3(moto, moto.adminKeys());
    const listed = await admin.send(new ListBucketsCommand({}));
    assert.deepEqual(listed.Buckets ?? [], []);
  });
});
