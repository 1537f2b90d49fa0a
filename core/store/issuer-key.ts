/**
 * The local issuer's signing key, one for every replica: the first replica to start
 * creates it in the shared store (under the store's lock), every replica loads it, so a
 * token minted with any replica's config verifies on all. The issuer id is stored with the
 * key because the issuer URL must be the same everywhere too (each replica keeps its own
 * gateway id for its audit chain).
 */
import { createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import type { SharedStore } from './types.ts';
import type { GatewayIdentity } from '../identity/gateway-key.ts';

export const ISSUER_KEY_NAME = 'local-issuer-key';

export interface IssuerKey {
  /** Stable for the deployment: the local issuer is `urn:airlock:<issuerId>`. */
  readonly issuerId: string;
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly signingKey: KeyObject;
  readonly publicJwk: JWK & { kid: string };
}

interface StoredIssuerKey {
  issuerId: string;
  jwk: JWK & { kid: string };
}

export async function loadOrCreateIssuerKey(store: SharedStore): Promise<IssuerKey> {
  const text = await store.sharedValue(ISSUER_KEY_NAME, createIssuerKey);
  const stored = parseStored(text);
  const { kty, crv, x, kid } = stored.jwk;
  const publicJwk: JWK & { kid: string } = { kty: kty!, crv: crv!, x: x!, kid, alg: 'EdDSA', use: 'sig' };
  const privateKey = (await importJWK({ ...stored.jwk, alg: 'EdDSA' }, 'EdDSA')) as CryptoKey;
  const signingKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x: stored.jwk.x!, d: stored.jwk.d! }, format: 'jwk' });
  return { issuerId: stored.issuerId, kid, privateKey, signingKey, publicJwk };
}

async function createIssuerKey(): Promise<string> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  const stored: StoredIssuerKey = { issuerId: `gw-${randomBytes(6).toString('hex')}`, jwk: { ...jwk, kid } };
  return JSON.stringify(stored);
}

function parseStored(text: string): StoredIssuerKey {
  const v: unknown = JSON.parse(text);
  if (typeof v === 'object' && v !== null && 'issuerId' in v && 'jwk' in v && typeof v.issuerId === 'string' && typeof v.jwk === 'object' && v.jwk !== null) {
    const jwk = v.jwk as JWK & { kid?: unknown };
    if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && typeof jwk.d === 'string' && typeof jwk.x === 'string' && typeof jwk.kid === 'string') {
      return { issuerId: v.issuerId, jwk: { ...jwk, kid: jwk.kid } };
    }
  }
  throw new Error(`the shared value ${ISSUER_KEY_NAME} in the store is not an Ed25519 issuer key`);
}

/**
 * The identity the local issuer signs agent tokens with: the shared key with a PostgreSQL
 * store (every replica mints and accepts the same tokens), the gateway's own key with the
 * file store (no change for existing one-process deployments).
 */
export async function localIssuerIdentity(store: SharedStore, gateway: GatewayIdentity): Promise<GatewayIdentity> {
  if (store.type === 'file') return gateway;
  const k = await loadOrCreateIssuerKey(store);
  const publicKey = (await importJWK(k.publicJwk, 'EdDSA')) as CryptoKey;
  return { gatewayId: k.issuerId, key: { privateKey: k.privateKey, publicKey, signingKey: k.signingKey, publicJwk: k.publicJwk, kid: k.kid } };
}
