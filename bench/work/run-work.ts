/**
 * The `work` part: bench/work/measure.ts in a child process of its own (a clean heap and JIT,
 * nothing else on its event loop), run while no other part's servers are up. Its figures are
 * what airlock must do per statement and per GetItem beyond what its floor does; the report
 * adds them to the floor measured in the same run (bench/README.md, "the bound").
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { serverArgs } from '../lib/bundle.ts';

const execFileAsync = promisify(execFile);

export interface WorkPartResult {
  operationsPerRound: number;
  rounds: number;
  /** Median CPU µs per operation of each stage and of each whole chain (`statement`, `getitem`). */
  cpuUsPerOperation: Record<string, number>;
}

export async function runWorkPart(o: { progress: (line: string) => void; operations?: number; rounds?: number }): Promise<WorkPartResult> {
  o.progress('work: airlock\'s own work per statement and per GetItem, measured alone');
  const args = [...(await serverArgs('work-measure')), String(o.operations ?? 80_000), String(o.rounds ?? 5)];
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(process.execPath, args, { encoding: 'utf8', timeout: 300_000, maxBuffer: 1 << 20 }));
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`work: node ${args.join(' ')} failed: ${(err.stderr || err.message).trim().slice(-1500)}`);
  }
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as WorkPartResult;
  for (const name of ['statement', 'getitem']) {
    if (!(result.cpuUsPerOperation[name]! > 0)) throw new Error(`work: no figure for ${name} in ${stdout.slice(-500)}`);
  }
  o.progress(`work: statement ${result.cpuUsPerOperation.statement} µs, GetItem ${result.cpuUsPerOperation.getitem} µs CPU per operation`);
  return result;
}
