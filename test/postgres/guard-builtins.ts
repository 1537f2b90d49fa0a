/**
 * Builds plugins/postgres/guard/builtins.ts from a live PostgreSQL 15 catalogue: the names of
 * pg_catalog functions with no VOLATILE overload (declared not to modify the database) and
 * the names of pg_catalog operators. Run `node --import tsx test/postgres/guard-builtins.ts`
 * to regenerate; test/postgres/guard-builtins.test.ts fails when the file drifts.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPostgresCluster, type PostgresCluster } from '../harness/postgres-cluster.ts';

export const BUILTINS_PATH = join(import.meta.dirname, '../../plugins/postgres/guard/builtins.ts');

export async function catalogueBuiltins(cluster: PostgresCluster): Promise<{ functions: string[]; operators: string[] }> {
  const functions = await cluster.sql(
    `select distinct proname from pg_proc p where pronamespace = 'pg_catalog'::regnamespace
       and not exists (select 1 from pg_proc q where q.pronamespace = p.pronamespace and q.proname = p.proname and q.provolatile = 'v')
     order by 1`,
  );
  const operators = await cluster.sql(`select distinct oprname from pg_operator where oprnamespace = 'pg_catalog'::regnamespace order by 1`);
  const lines = (s: string) => s.split('\n').filter(Boolean);
  return { functions: lines(functions), operators: lines(operators) };
}

export function renderBuiltins(b: { functions: string[]; operators: string[]; version: string }): string {
  const wrap = (names: string[]) => {
    const out: string[] = [];
    let line = '';
    for (const n of names) {
      if (line.length + n.length > 100) {
        out.push(line.trimEnd());
        line = '';
      }
      line += n + ' ';
    }
    if (line) out.push(line.trimEnd());
    return out.join('\n');
  };
  return `/**
 * GENERATED from the catalogue of ${b.version} by test/postgres/guard-builtins.ts: do not edit.
 * READ_ONLY_FUNCTIONS: pg_catalog functions with no VOLATILE overload (declared not to modify
 * the database). BUILTIN_OPERATORS: pg_catalog operator names. The guard's own exceptions to
 * these lists (stable functions that still write, harmless volatile ones) are in rules.ts.
 */
const set = (text: string): ReadonlySet<string> => new Set(text.split(/\\s+/).filter(Boolean));

export const READ_ONLY_FUNCTIONS = set(\`
${wrap(b.functions)}
\`);

export const BUILTIN_OPERATORS = set(\`
${wrap(b.operators)}
\`);
`;
}

if (import.meta.filename === process.argv[1]) {
  const cluster = await startPostgresCluster({ ssl: false });
  try {
    const version = (await cluster.sql('select version()')).trim().split(' on ')[0]!;
    writeFileSync(BUILTINS_PATH, renderBuiltins({ ...(await catalogueBuiltins(cluster)), version }));
  } finally {
    await cluster.stop();
  }
}
