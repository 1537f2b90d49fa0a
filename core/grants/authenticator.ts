/**
 * The grant checks one plugin may make (core/plugin.ts GrantAuthenticator), bound to that
 * plugin's resource type so a Postgres grant can never open a DynamoDB request. Grants are
 * handed out with their scope parsed by the plugin's `scopeSchema`, once per stored state.
 */
import { randomBytes } from 'node:crypto';
import { AirlockError, ErrorCodes } from '../errors.ts';
import type { AnyScope, Grant, GrantAuthenticator, ScramVerifier } from '../plugin.ts';
import { decoyScram, GRANT_ID_PATTERN, secretMatchesSha256, sigv4KeyFromDateKey } from './credentials.ts';
import type { GrantRecord } from './record.ts';
import type { GrantService } from './service.ts';
import { toGrant } from './service.ts';

const PEPPER = randomBytes(32);

const MAX_CACHED_SIGNING_KEYS = 10_000;
const BEARER_MISMATCH = 'grant credential does not match';
/** Compared against for unknown grants, so they take as long as a wrong secret. */
const DECOY_SHA256 = randomBytes(32).toString('hex');

export function authenticatorFor<Scope>(service: GrantService, resourceType: string, parseScope: (raw: AnyScope) => Scope): GrantAuthenticator<Scope> {
  const signingKeys = new Map<string, Buffer>();
  // Records are replaced, never mutated, on every transition: one parse per state.
  const typed = new WeakMap<GrantRecord, Grant<Scope>>();
  const asGrant = (record: GrantRecord): Grant<Scope> => {
    let grant = typed.get(record);
    if (!grant) {
      grant = { ...toGrant(record), scope: parseScope(record.scope) };
      typed.set(record, grant);
    }
    return grant;
  };
  const lookup = (grantId: string): GrantRecord => {
    const record = GRANT_ID_PATTERN.test(grantId) ? service.current(grantId) : undefined;
    if (!record) throw new AirlockError(ErrorCodes.GRANT_UNKNOWN, 'unknown grant credential');
    if (record.resourceType !== resourceType) {
      throw new AirlockError(ErrorCodes.WRONG_RESOURCE, `grant ${grantId} is for resource "${record.resource}", not a ${resourceType} resource`);
    }
    return record;
  };
  const requireActive = (grantId: string): Grant<Scope> => {
    lookup(grantId);
    return asGrant(service.requireActiveRecord(grantId));
  };

  return {
    scram(grantId) {
      const record = lookup(grantId);
      const s = record.verifiers.scram;
      if (!s) throw new AirlockError(ErrorCodes.WRONG_RESOURCE, `grant ${grantId} has no SCRAM verifier`);
      return {
        grant: asGrant(record),
        verifier: { salt: Buffer.from(s.salt, 'base64'), iterations: s.iterations, storedKey: Buffer.from(s.storedKey, 'base64'), serverKey: Buffer.from(s.serverKey, 'base64') },
      };
    },

    decoyScram(grantId: string): ScramVerifier {
      return decoyScram(grantId, PEPPER);
    },

    bearer(token) {
      const dot = token.indexOf('.');
      if (dot <= 0) throw new AirlockError(ErrorCodes.GRANT_UNKNOWN, BEARER_MISMATCH);
      let record: GrantRecord | undefined;
      try {
        record = lookup(token.slice(0, dot));
      } catch (e) {
        // An unknown (or foreign) grant reads exactly like a wrong secret; the code stays for the audit.
        if (!(e instanceof AirlockError)) throw e;
        secretMatchesSha256(token.slice(dot + 1), DECOY_SHA256);
        throw new AirlockError(e.code, BEARER_MISMATCH);
      }
      const expected = record.verifiers.sha256;
      if (!expected || !secretMatchesSha256(token.slice(dot + 1), expected)) {
        throw new AirlockError(ErrorCodes.BAD_CREDENTIAL, BEARER_MISMATCH);
      }
      return requireActive(record.id);
    },

    sigv4SigningKey(grantId, date, region, service_) {
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
      return { grant: asGrant(record), key };
    },

    requireActive,

    get(grantId) {
      const record = service.current(grantId);
      return record && record.resourceType === resourceType ? asGrant(record) : undefined;
    },

    listActive() {
      return service.activeRecords(resourceType).map(asGrant);
    },
  };
}
