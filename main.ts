/**
 * The airlock entry point: core's CLI with this distribution's plugins, sinks and the
 * embedded `airlock dev` default.
 */
import { runCli } from './core/cli/main.ts';
import { plugins } from './plugins/index.ts';
import { sinks } from './audit-sinks/index.ts';

const code = await runCli(process.argv.slice(2), {
  plugins,
  sinks,
  dev: async () => (await import('./dev/run.ts')).runDev({ plugins, sinks }),
  auditVerify: async (args) => (await import('./core/cli/audit-verify.ts')).runAuditVerify(args),
});
if (code >= 0) process.exitCode = code;
