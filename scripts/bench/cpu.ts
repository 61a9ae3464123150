// Where a scenario's CPU went, process by process: a ratio says how much slower the service is
// than its baseline; this says which process spends the difference. Read from /proc (Linux);
// elsewhere nothing is read and nothing printed.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks a second in /proc's times (USER_HZ): 100 unless getconf says otherwise. */
const ticksPerSecond = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * The user and system CPU milliseconds process `pid` has used so far, all its threads together;
 * undefined once it is gone or where there is no /proc.
 */
export function processCpuMs(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The fields after the command name, which may itself hold spaces and parentheses: utime and
  // stime are the 14th and 15th fields of the line, the 12th and 13th after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
}

/** CPU milliseconds used so far by each part of a stack (by name), process by process. */
export type CpuUse = Map<string, Map<number, number>>;

/** What each part's processes (`parts`: name → pids) have used so far; gone ones left out. */
export function readCpuUse(parts: Record<string, readonly number[]>): CpuUse {
  return new Map(
    Object.entries(parts).map(([name, pids]) => [
      name,
      new Map(
        pids.flatMap((pid) => {
          const used = processCpuMs(pid);
          return used === undefined ? [] : [[pid, used] as const];
        }),
      ),
    ]),
  );
}

/**
 * `CPU per job: API 3.9 ms, worker 13.7 ms, … = 35.0 ms`: what each part used between `before`
 * and `after`, divided by `jobs`; null when nothing could be read (no /proc). A process that
 * started in between counts from zero; one that ended in between is not counted.
 */
export function cpuPerJob(before: CpuUse, after: CpuUse, jobs: number): string | null {
  const parts = [...after]
    .map(([name, processes]) => {
      let used = 0;
      for (const [pid, now] of processes) used += now - (before.get(name)?.get(pid) ?? 0);
      return [name, used / jobs] as const;
    })
    // Under 0.05 ms a job shows as 0.0: an idle process's polling, not the job's work.
    .filter(([, perJob]) => perJob >= 0.05);
  if (parts.length === 0) return null;
  const total = parts.reduce((sum, [, perJob]) => sum + perJob, 0);
  return `CPU per job: ${parts.map(([name, perJob]) => `${name} ${perJob.toFixed(1)} ms`).join(', ')} = ${total.toFixed(1)} ms`;
}
