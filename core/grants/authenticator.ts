/**
 * The grant checks one plugin may make (core/plugin.ts GrantAuthenticator), bound to that
 * plugin's resource type so a Postgres grant can never open a DynamoDB request.
 */
import { randomBytes } from 'node:crypto';
import { AirlockError, ErrorCodes } from '../errors.ts';
import type { Grant, GrantAuthenticator, ScramVerifier } from '../plugin.ts';
import { decoyScram, GRANT_ID_PATTERN, secretMatchesSha256, sigv4KeyFromDateKey } from './credentials.ts';
import type { GrantService } from './service.ts';
import { toGrant } from './service.ts';

const PEPPER = randomBytes(32);

const MAX_CACHED_SIGNING_KEYS = 10_000;

export function authenticatorFor(service: GrantService, resourceType: string): GrantAuthenticator {
  const signingKeys = new Map<string, Buffer>();
  const lookup = (grantId: string) => {
    const record = GRANT_ID_PATTERN.test(grantId) ? service.record(grantId) : undefined;
    if (!record) throw new AirlockError(ErrorCodes.GRANT_UNKNOWN, 'unknown grant credential');
    if (record.resourceType !== resourceType) {
      throw new AirlockError(ErrorCodes.WRONG_RESOURCE, `grant ${grantId} is for resource "${record.resource}", not a ${resourceType} resource`);
    }
    return record;
  };

  return {
    scram(grantId: string): { grant: Grant; verifier: ScramVerifier } {
      const record = lookup(grantId);
      const s = record.verifiers.scram;
      if (!s) throw new AirlockError(ErrorCodes.WRONG_RESOURCE, `grant ${grantId} has no SCRAM verifier`);
      return {
        grant: service.view(grantId) ?? toGrant(record),
        verifier: { salt: Buffer.from(s.salt, 'base64'), iterations: s.iterations, storedKey: Buffer.from(s.storedKey, 'base64'), serverKey: Buffer.from(s.serverKey, 'base64') },
      };
    },

    decoyScram(grantId: string): ScramVerifier {
      return decoyScram(grantId, PEPPER);
    },

    bearer(token: string): Grant {
      const dot = token.indexOf('.');
      if (dot <= 0) throw new AirlockError(ErrorCodes.GRANT_UNKNOWN, 'malformed grant credential');
      const record = lookup(token.slice(0, dot));
      const expected = record.verifiers.sha256;
      if (!expected || !secretMatchesSha256(token.slice(dot + 1), expected)) {
        throw new AirlockError(ErrorCodes.BAD_CREDENTIAL, 'grant credential does not match');
      }
      return service.requireActive(record.id);
    },

    sigv4SigningKey(grantId: string, date: string, region: string, service_: string): { grant: Grant; key: Buffer } {
      const record = lookup(grantId);
      const kDate = record.verifiers.sigv4?.[date];
      if (!kDate) throw new AirlockError(ErrorCodes.REQUEST_EXPIRED, `grant ${grantId} is not valid on ${date}`);
      // Three HMACs per request otherwise; the key is as secret as kDate, which we hold anyway.
      const cacheKey = `${grantId}/${date}/${region}/${service_}`;
      let key = signingKeys.get(cacheKey);
      if (!key) {
        if (signingKeys.size >= MAX_CACHED_SIGNING_KEYS) signingKeys.clear();
        key = sigv4KeyFromDateKey(kDate, region, service_);
        signingKeys.set(cacheKey, key);
      }
      return { grant: service.view(grantId) ?? toGrant(record), key };
    },

    requireActive(grantId: string): Grant {
      lookup(grantId);
      return service.requireActive(grantId);
    },

    get(grantId: string): Grant | undefined {
      const record = service.record(grantId);
      return record && record.resourceType === resourceType ? service.view(grantId) : undefined;
    },
  };
}
