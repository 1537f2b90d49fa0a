/**
 * Outbound SigV4 with airlock's own credentials (@smithy/signature-v4). Signers are cached
 * per credentials, service and region so the derived signing key (four HMACs) is computed
 * once per day rather than per request.
 */
import { Hash } from '@smithy/hash-node';
import type { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity } from '@smithy/types';

const MAX_SIGNERS = 256;
const sha256 = Hash.bind(null, 'sha256');

export class Signer {
  private readonly signers = new Map<string, SignatureV4>();

  private signerFor(service: string, region: string, credentials: AwsCredentialIdentity): SignatureV4 {
    const key = `${credentials.accessKeyId}\0${credentials.sessionToken ?? ''}\0${service}\0${region}`;
    let signer = this.signers.get(key);
    if (signer === undefined) {
      // Bounded: role sessions come and go; the oldest signer is dropped first.
      if (this.signers.size >= MAX_SIGNERS) {
        const oldest = this.signers.keys().next().value;
        if (oldest !== undefined) this.signers.delete(oldest);
      }
      signer = new SignatureV4({ service, region, credentials, sha256 });
      this.signers.set(key, signer);
    }
    return signer;
  }

  async sign(
    request: HttpRequest,
    opts: { service: string; region: string; credentials: AwsCredentialIdentity },
  ): Promise<HttpRequest> {
    const signed = await this.signerFor(opts.service, opts.region, opts.credentials).sign(request);
    return signed as HttpRequest;
  }

  async presign(
    request: HttpRequest,
    opts: { service: string; region: string; credentials: AwsCredentialIdentity; expiresIn: number; signingDate?: Date },
  ): Promise<HttpRequest> {
    const signer = this.signerFor(opts.service, opts.region, opts.credentials);
    const presigned = await signer.presign(request, {
      expiresIn: opts.expiresIn,
      ...(opts.signingDate === undefined ? {} : { signingDate: opts.signingDate }),
    });
    return presigned as HttpRequest;
  }

  clear(): void {
    this.signers.clear();
  }
}
