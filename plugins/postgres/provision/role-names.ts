/** The per-grant role's name (SPEC CONTRACT): `airlock_<grant id in lower case>`. */

/** Grant ids are `AG` + 18 base32 characters (core/grants/credentials.ts). */
const GRANT_ID = /^AG[A-Z2-7]{18}$/;

/** What `sweep` may drop: nothing else, even if it starts with `airlock_` (e.g. the admin). */
export const GRANT_ROLE_PATTERN = '^airlock_ag[a-z2-7]{18}$';

export function roleNameFor(grantId: string): string {
  if (!GRANT_ID.test(grantId)) throw new Error(`not a grant id: ${JSON.stringify(grantId.slice(0, 40))}`);
  return `airlock_${grantId.toLowerCase()}`;
}

/** The comment a grant role carries, so a sweep only touches the roles of its own database. */
export function roleMarker(database: string): string {
  return `airlock grant role for database ${database}`;
}
