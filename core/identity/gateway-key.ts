/**
 * The gateway's own Ed25519 key and id, created in dataDir on first start. The key signs
 * agent tokens of the local issuer and audit checkpoints; its public half is published at
 * /.well-known/jwks.json and written to keys/gateway.pub.jwk for `airlock audit verify`.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, calculateJwkThumbprint, type JWK, type CryptoKey } from 'jose';

export interface GatewayKey {
  readonly privateKey: CryptoKey;
  /**
   * The same private key as a node:crypto KeyObject, for the audit's synchronous checkpoint
   * signing (made from the JWK: converting jose's non-extractable CryptoKey is deprecated).
   */
  readonly signingKey: KeyObject;
  readonly publicKey: CryptoKey;
  readonly publicJwk: JWK & { kid: string };
  readonly kid: string;
}

export interface GatewayIdentity {
  readonly gatewayId: string;
  readonly key: GatewayKey;
}

export async function loadOrCreateGatewayIdentity(dataDir: string): Promise<GatewayIdentity> {
  const keysDir = join(dataDir, 'keys');
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  const idFile = join(dataDir, 'gateway-id');
  if (!existsSync(idFile)) writeAtomic(idFile, `gw-${randomBytes(6).toString('hex')}\n`, 0o644);
  const gatewayId = readFileSync(idFile, 'utf8').trim();

  const privFile = join(keysDir, 'gateway.jwk');
  if (!existsSync(privFile)) {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const jwk = await exportJWK(privateKey);
    jwk.kid = await calculateJwkThumbprint(jwk);
    writeAtomic(privFile, JSON.stringify(jwk), 0o600);
  }
  const privJwk = JSON.parse(readFileSync(privFile, 'utf8')) as JWK & { kid: string };
  const publicJwk: JWK & { kid: string } = { kty: privJwk.kty!, crv: privJwk.crv!, x: privJwk.x!, kid: privJwk.kid, alg: 'EdDSA', use: 'sig' };
  const pubFile = join(keysDir, 'gateway.pub.jwk');
  writeAtomic(pubFile, JSON.stringify(publicJwk) + '\n', 0o644);
  const privateKey = (await importJWK({ ...privJwk, alg: 'EdDSA' }, 'EdDSA')) as CryptoKey;
  const publicKey = (await importJWK(publicJwk, 'EdDSA')) as CryptoKey;
  const signingKey = createPrivateKey({ key: { kty: privJwk.kty!, crv: privJwk.crv!, x: privJwk.x!, d: privJwk.d! }, format: 'jwk' });
  return { gatewayId, key: { privateKey, publicKey, signingKey, publicJwk, kid: privJwk.kid } };
}

function writeAtomic(path: string, content: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode });
  renameSync(tmp, path);
}
