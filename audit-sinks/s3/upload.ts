/**
 * Store one gzip object: a single PutObject up to a threshold, a multipart upload above it
 * (S3 caps a single PUT at 5 GiB and a large PUT retried from scratch is expensive). The
 * same headers (SSE-KMS, object-lock retention) go on either form. A failed multipart
 * upload is aborted so it leaves no billable parts behind; the batch is then retried whole.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
  type CompletedPart,
  type ObjectLockMode,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';

/** S3's smallest part size other than the last one. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;

export interface UploadLimits {
  /** Objects larger than this go multipart. */
  multipartThreshold: number;
  /** Size of each part but the last (at least MIN_PART_BYTES). */
  partSize: number;
}

export const DEFAULT_LIMITS: UploadLimits = { multipartThreshold: 16 * 1024 * 1024, partSize: 8 * 1024 * 1024 };

export interface ObjectHeaders {
  ServerSideEncryption?: ServerSideEncryption;
  SSEKMSKeyId?: string;
  ObjectLockMode?: ObjectLockMode;
  ObjectLockRetainUntilDate?: Date;
}

export interface StoredObject {
  parts: number;
  bytes: number;
}

export async function storeObject(
  client: S3Client,
  target: { bucket: string; key: string; body: Buffer; headers: ObjectHeaders },
  limits: UploadLimits = DEFAULT_LIMITS,
): Promise<StoredObject> {
  const common = {
    Bucket: target.bucket,
    Key: target.key,
    ContentType: 'application/x-ndjson',
    ContentEncoding: 'gzip',
    ...target.headers,
  };
  if (target.body.length <= limits.multipartThreshold) {
    // A checksum is required by S3 for object-lock PUTs; the SDK sends CRC32 by default,
    // and asking for it explicitly keeps that true whatever the SDK's default becomes.
    await client.send(new PutObjectCommand({ ...common, Body: target.body, ChecksumAlgorithm: 'CRC32' }));
    return { parts: 1, bytes: target.body.length };
  }

  const partSize = Math.max(limits.partSize, MIN_PART_BYTES);
  const created = await client.send(new CreateMultipartUploadCommand({ ...common, ChecksumAlgorithm: 'CRC32' }));
  const uploadId = created.UploadId;
  if (!uploadId) throw new Error(`s3 sink: CreateMultipartUpload for ${target.key} returned no UploadId`);
  try {
    const parts: CompletedPart[] = [];
    for (let offset = 0, partNumber = 1; offset < target.body.length; offset += partSize, partNumber += 1) {
      const chunk = target.body.subarray(offset, Math.min(offset + partSize, target.body.length));
      const uploaded = await client.send(
        new UploadPartCommand({
          Bucket: target.bucket,
          Key: target.key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: chunk,
          ChecksumAlgorithm: 'CRC32',
        }),
      );
      parts.push({ PartNumber: partNumber, ETag: uploaded.ETag, ChecksumCRC32: uploaded.ChecksumCRC32 });
    }
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: target.bucket,
        Key: target.key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
    return { parts: parts.length, bytes: target.body.length };
  } catch (e) {
    // Best effort: the original error is what the runner must see and retry on.
    await client
      .send(new AbortMultipartUploadCommand({ Bucket: target.bucket, Key: target.key, UploadId: uploadId }))
      .catch(() => undefined);
    throw e;
  }
}
