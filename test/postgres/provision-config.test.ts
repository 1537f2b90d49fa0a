/**
 * Provisioned access levels through the real config loader with the real plugin list: the
 * accepted shapes, the errors (each naming its key), and grant scopes narrowed to tables.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../core/config/load.ts';
import { plugins } from '../../plugins/index.ts';
import { sinks } from '../../audit-sinks/index.ts';
import postgresPlugin from '../../plugins/postgres/index.ts';
import { isAirlockError } from '../../core/errors.ts';
import type { PostgresResource } from '../../plugins/postgres/config.ts';

const env = { DB_PW: 'x', ADMIN_PW: 'y' };

function yaml(resource: string): string {
  return `resources:\n  reporting:\n    type: postgres\n    host: 127.0.0.1\n    database: reporting\n${resource}`;
}
const passwordAuth = `    auth: { type: password, passwordEnv: DB_PW }\n`;
const provision = `    provision: { user: airlock_admin, passwordEnv: ADMIN_PW }\n`;

function load(text: string): PostgresResource {
  const config = parseConfigText(text, 'c.yaml', { plugins, sinks, env });
  return config.resources.reporting as unknown as PostgresResource;
}

const good = yaml(
  passwordAuth +
    provision +
    `    access:
      read:  { privileges: [SELECT], tables: ["public.*"] }
      write: { privileges: [select, INSERT, UPDATE, DELETE], tables: [public.sales, sales, '"Other"."Odd"'] }
      ops:   { user: agent_rw }
`,
);

test('static and provisioned levels side by side', () => {
  const r = load(good);
  assert.deepEqual(Object.keys(r.access), ['ops']);
  assert.equal(r.access.ops!.user, 'agent_rw');
  assert.deepEqual(Object.keys(r.provisioned), ['read', 'write']);
  assert.deepEqual(r.provisioned.read!.privileges, ['SELECT']);
  assert.deepEqual(r.provisioned.read!.tables, [{ schema: 'public', table: '*' }]);
  assert.deepEqual(r.provisioned.write!.privileges, ['SELECT', 'INSERT', 'UPDATE', 'DELETE']);
  assert.deepEqual(r.provisioned.write!.tables, [{ schema: 'public', table: 'sales' }, { schema: 'public', table: 'sales' }, { schema: 'Other', table: 'Odd' }]);
  assert.deepEqual(r.provision, { user: 'airlock_admin', passwordEnv: 'ADMIN_PW' });
  assert.deepEqual(postgresPlugin.accessLevels(r), ['ops', 'read', 'write']);
});

test('a static level may say readOnly: true (the guardrail applies the SELECT-only rules)', () => {
  const r = load(yaml(passwordAuth + `    access:\n      ro: { user: agent_ro, readOnly: true }\n      rw: { user: agent_rw }\n`));
  assert.equal(r.access.ro!.readOnly, true);
  assert.equal(r.access.rw!.readOnly, undefined);
});

test('rds-iam: the admin needs no passwordEnv (and may not have one)', () => {
  const ok = yaml(`    auth: { type: rds-iam }\n    provision: { user: airlock_admin }\n    access:\n      read: { privileges: [SELECT], tables: [sales] }\n`);
  assert.equal(load(ok).provision?.user, 'airlock_admin');
  const bad = yaml(`    auth: { type: rds-iam }\n    provision: { user: airlock_admin, passwordEnv: ADMIN_PW }\n    access:\n      read: { privileges: [SELECT], tables: [sales] }\n`);
  assert.throws(() => load(bad), /resources\.reporting\.provision\.passwordEnv: with auth\.type: rds-iam the provisioning admin logs in with an IAM token/);
});

const errors: Array<[string, string, RegExp]> = [
  ['a level with both user and tables', passwordAuth + provision + `    access:\n      read: { user: agent_ro, tables: [sales] }\n`, /c\.yaml line \d+: resources\.reporting\.access\.read\.tables: a level has either user \(static\) or privileges and tables \(provisioned\), not both/],
  ['an unknown privilege', passwordAuth + provision + `    access:\n      read: { privileges: [SELECT, EXECUTE], tables: [sales] }\n`, /resources\.reporting\.access\.read\.privileges\.1: unknown privilege \(one of SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER\)/],
  ['provisioned levels without provision', passwordAuth + `    access:\n      read: { privileges: [SELECT], tables: [sales] }\n`, /resources\.reporting\.provision: access level read is provisioned \(privileges, tables\): the resource needs provision: \{user, passwordEnv\}/],
  ['privileges without tables', passwordAuth + provision + `    access:\n      read: { privileges: [SELECT] }\n`, /resources\.reporting\.access\.read\.tables: a provisioned level needs tables/],
  ['tables without privileges', passwordAuth + provision + `    access:\n      read: { tables: [sales] }\n`, /resources\.reporting\.access\.read\.privileges: a provisioned level needs privileges/],
  ['an empty level', passwordAuth + provision + `    access:\n      read: {}\n`, /resources\.reporting\.access\.read\.privileges: a level needs user \(static\) or privileges and tables/],
  ['a system schema', passwordAuth + provision + `    access:\n      read: { privileges: [SELECT], tables: ["pg_catalog.*"] }\n`, /resources\.reporting\.access\.read\.tables\.0: "pg_catalog\.\*": system schema pg_catalog cannot be granted/],
  ['a wildcard without schema', passwordAuth + provision + `    access:\n      read: { privileges: [SELECT], tables: ["*"] }\n`, /access\.read\.tables\.0: "\*": a wildcard needs a schema/],
  ['a three-part name', passwordAuth + provision + `    access:\n      read: { privileges: [SELECT], tables: [db.public.sales] }\n`, /access\.read\.tables\.0: "db\.public\.sales" has more than two parts/],
  ['a password admin without passwordEnv', passwordAuth + `    provision: { user: airlock_admin }\n    access:\n      read: { privileges: [SELECT], tables: [sales] }\n`, /resources\.reporting\.provision\.passwordEnv: with auth\.type: password the provisioning admin needs passwordEnv/],
  ['passwordEnv on a provisioned level', passwordAuth + provision + `    access:\n      read: { privileges: [SELECT], tables: [sales], passwordEnv: DB_PW }\n`, /access\.read\.passwordEnv: passwordEnv belongs to a static level/],
  ['readOnly on a provisioned level', passwordAuth + provision + `    access:\n      read: { privileges: [SELECT], tables: [sales], readOnly: true }\n`, /access\.read\.readOnly: readOnly belongs to a static level/],
];
for (const [name, resource, expected] of errors) {
  test(`config error names the key: ${name}`, () => {
    assert.throws(() => load(yaml(resource)), (e: unknown) => {
      assert.equal((e as Error).name, 'ConfigError');
      assert.match((e as Error).message, expected);
      return true;
    });
  });
}

test('the admin password variable must be set', () => {
  assert.throws(() => parseConfigText(good, 'c.yaml', { plugins, sinks, env: { DB_PW: 'x' } }), /resources\.reporting\.provision\.passwordEnv: environment variable ADMIN_PW is not set/);
});

function scopeError(r: PostgresResource, access: string, scope: Record<string, unknown> | undefined): { code: string; message: string } {
  try {
    postgresPlugin.resolveScope(r, access, scope);
  } catch (e) {
    if (isAirlockError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('resolveScope accepted the scope');
}

test('scope narrows a provisioned level; unqualified names are public', () => {
  const r = load(good);
  assert.deepEqual(postgresPlugin.resolveScope(r, 'read', undefined), { database: 'reporting', privileges: ['SELECT'], tables: ['public.*'] });
  assert.deepEqual(postgresPlugin.resolveScope(r, 'read', { tables: ['sales', 'public.refunds', 'PUBLIC.Sales'] }), { database: 'reporting', privileges: ['SELECT'], tables: ['public.sales', 'public.refunds'] });
  assert.deepEqual(postgresPlugin.resolveScope(r, 'write', { tables: ['"Other"."Odd"'] }), { database: 'reporting', privileges: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'], tables: ['"Other"."Odd"'] });
  assert.deepEqual(postgresPlugin.resolveScope(r, 'read', { tables: ['public.*'] }).tables, ['public.*']);
});

test('a table outside the level is OUT_OF_SCOPE naming it (the API answers 403)', () => {
  const r = load(good);
  assert.deepEqual(scopeError(r, 'write', { tables: ['sales', 'customers'] }), { code: 'OUT_OF_SCOPE', message: 'table public.customers is outside access level "write" (public.sales, public.sales, "Other"."Odd")' });
  assert.equal(scopeError(r, 'read', { tables: ['secret.keys'] }).code, 'OUT_OF_SCOPE');
  assert.match(scopeError(r, 'write', { tables: ['public.*'] }).message, /table public\.\* is outside access level "write"/);
  assert.match(scopeError(r, 'write', { tables: ['other.odd'] }).message, /table other\.odd is outside/);
});

test('malformed scopes are BAD_REQUEST; static levels still refuse any scope', () => {
  const r = load(good);
  assert.equal(scopeError(r, 'read', { tables: [] }).code, 'BAD_REQUEST');
  assert.equal(scopeError(r, 'read', { tables: 'sales' }).code, 'BAD_REQUEST');
  assert.equal(scopeError(r, 'read', { tables: [1] }).code, 'BAD_REQUEST');
  assert.match(scopeError(r, 'read', { namespaces: ['x'] }).message, /unknown scope key 'namespaces'/);
  assert.match(scopeError(r, 'read', { tables: ['a.b.c'] }).message, /more than two parts/);
  assert.deepEqual(scopeError(r, 'ops', { tables: ['sales'] }).code, 'BAD_REQUEST');
  assert.match(scopeError(r, 'ops', { tables: ['sales'] }).message, /take no scope/);
  assert.deepEqual(postgresPlugin.resolveScope(r, 'ops', undefined), { database: 'reporting', user: 'agent_rw' });
  assert.equal(scopeError(r, 'nope', undefined).code, 'BAD_REQUEST');
});
