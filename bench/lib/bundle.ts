/**
 * The bench's servers (the gateway, its floor, the work measure) run as airlock ships: built
 * by tsdown, as `npm run build` builds `dist/main.mjs`, and started with plain `node`.
 *
 * Why not through tsx, as the suite runs: tsx compiles with esbuild's `keepNames`, which
 * wraps every named function it creates at run time — each class-field arrow, each
 * `const f = () => …` — in `Object.defineProperty(f, 'name', …)`. That puts the function's
 * properties in dictionary mode: a 256-byte dictionary per closure (16 per idle Postgres
 * session, 4 KiB of its 18 KiB heap) and a defineProperty per closure created on a hot
 * path. The shipped bundle has neither (bench/README.md, "Eighth pass"), so a bench run
 * through tsx measured a build no deployment runs.
 *
 * `BENCH_RUNTIME=tsx` runs the sources through tsx instead (stack frames name the .ts
 * files, which a profile by file wants).
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsdown';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Beside dist/main.mjs, so dependencies resolve from the same node_modules. */
const OUT_DIR = join(ROOT, 'dist', 'bench');

/** Source path (relative to the repository) → bundle name. */
const ENTRIES = {
  'gateway-server': 'bench/gateway-server.ts',
  'floor-server': 'bench/floor-server.ts',
  'work-measure': 'bench/work/measure.ts',
} as const;

export type BenchServer = keyof typeof ENTRIES;

let built: Promise<void> | undefined;

/** Build every bench server once per process (a second call waits for the first build). */
function buildOnce(): Promise<void> {
  built ??= build({
    config: false,
    entry: Object.fromEntries(Object.entries(ENTRIES).map(([name, source]) => [name, join(ROOT, source)])),
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outDir: OUT_DIR,
    clean: true,
    dts: false,
    logLevel: 'warn',
  }).then(() => {
    for (const name of Object.keys(ENTRIES)) {
      if (!existsSync(join(OUT_DIR, `${name}.mjs`))) throw new Error(`bench bundle: tsdown wrote no ${name}.mjs in ${OUT_DIR}`);
    }
  });
  return built;
}

function benchRuntime(): 'bundle' | 'tsx' {
  const asked = process.env.BENCH_RUNTIME ?? 'bundle';
  if (asked !== 'bundle' && asked !== 'tsx') throw new Error(`BENCH_RUNTIME must be bundle or tsx, not ${asked}`);
  return asked;
}

/** The node arguments that start `server` (before its own arguments): the bundle, or the source through tsx. */
export async function serverArgs(server: BenchServer): Promise<string[]> {
  if (benchRuntime() === 'tsx') return ['--import', 'tsx', join(ROOT, ENTRIES[server])];
  await buildOnce();
  return [join(OUT_DIR, `${server}.mjs`)];
}
