/**
 * Every server a test starts is stopped, whatever happens: a harness registers a
 * synchronous stop here when it starts something, and unregisters it on a normal stop. If
 * the test process exits first (a failing `before`, an uncaught error, SIGINT/SIGTERM),
 * the registered stops run on the way out, so no PostgreSQL, moto or gateway outlives it.
 * `test/setup/run.ts` then checks the whole run left no process behind.
 */
const stops = new Set<() => void>();
let installed = false;

function runAll(): void {
  for (const stop of [...stops]) {
    stops.delete(stop);
    try {
      stop();
    } catch {
      // best effort on the way out: the run's leak check reports what survives
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.once('exit', runAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      runAll();
      process.kill(process.pid, signal);
    });
  }
}

/** Register a synchronous stop; call the returned function once stopped normally. */
export function stopOnExit(stop: () => void): () => void {
  install();
  stops.add(stop);
  return () => void stops.delete(stop);
}
