import type { BenchStack, BenchStackOptions, Topology } from './stack.js';

/** What a scenario gets from the runner. */
export interface ScenarioContext {
  /** `--smoke`: tiny sizes, seconds each; checks the scenario runs, not its figures. */
  smoke: boolean;
  /**
   * A number from `--name=value` on the command line, else `smoke` under --smoke, else
   * `normal`: how every size a scenario uses is chosen.
   */
  size: (name: string, normal: number, smoke: number) => number;
  /**
   * The shared service stack of a topology (stack.ts; default `separate`), started on first
   * use and stopped after the run.
   */
  stack: (topology?: Topology) => Promise<BenchStack>;
  /**
   * A stack of the scenario's own, for load the shared one must not keep: the scenario stops
   * it; an interrupted run still kills its processes.
   */
  ownStack: (options: BenchStackOptions) => Promise<BenchStack>;
}

export interface Scenario {
  name: string;
  /** One line for `npm run bench -- list`. */
  summary: string;
  run(context: ScenarioContext): Promise<void>;
}

/** Runs `task` for each of `count` items with at most `concurrency` at once. */
export async function inParallel(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(count, concurrency) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

/** Milliseconds `task` took. */
export async function timed(task: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await task();
  return performance.now() - started;
}
