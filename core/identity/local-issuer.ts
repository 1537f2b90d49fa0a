/** airlock's own issuer: agent tokens signed with the gateway key. */
import { SignJWT } from 'jose';
import type { GatewayIdentity } from './gateway-key.ts';

export const LOCAL_AUDIENCE = 'airlock';

export function localIssuerUrl(gatewayId: string): string {
  return `urn:airlock:${gatewayId}`;
}

export async function mintAgentToken(identity: GatewayIdentity, subject: string, ttlMs: number): Promise<string> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/.test(subject)) throw new Error(`invalid agent name "${subject}": letters, digits, . _ @ - (max 128)`);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', kid: identity.key.kid, typ: 'JWT' })
    .setIssuer(localIssuerUrl(identity.gatewayId))
    .setAudience(LOCAL_AUDIENCE)
    .setSubject(subject)
    .setIssuedAt(now)
    .setExpirationTime(now + Math.max(1, Math.floor(ttlMs / 1000)))
    .setJti(crypto.randomUUID())
    .sign(identity.key.privateKey);
}
