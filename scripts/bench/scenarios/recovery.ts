// How long an AI job stalls when the worker running its model call is SIGKILLed. Two workers
// poll; fake Gemini holds the job's first call; the worker Temporal says runs it is killed, and
// the figure is the time from the kill until the call is made again (progress moves), ÷ the
// same job's submit→completed undisturbed in the same run. Under --smoke the stack's AI
// heartbeat timeout is 5 s (run.ts), so it checks the path, not the default's figure.
import { randomUUID } from 'node:crypto';
import type { Scenario } from '../scenario.js';
import { timed } from '../scenario.js';
import { eventually } from '../../../test/support/eventually.js';
import { latencySummary, printFigure, printNote } from '../stats.js';

export const recoveryScenario: Scenario = {
  name: 'recovery',
  summary: 'seconds from a worker SIGKILL mid model call until the call runs again',
  async run({ size, stack: getStack }) {
    const stack = await getStack();
    const undisturbedJobs = size('jobs', 5, 2);
    const spare = await stack.startWorker();
    const undisturbed: number[] = [];
    for (let job = 0; job < undisturbedJobs; job += 1)
      undisturbed.push(
        await timed(async () => stack.result(await stack.submitAi('bench-recovery'))),
      );

    const marker = `recovery-${randomUUID().slice(0, 8)}`;
    let release = () => undefined as void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const calls: number[] = [];
    stack.google.scenario.answerFor = (prompt) => {
      if (!prompt.includes(marker)) return undefined;
      calls.push(performance.now());
      return calls.length === 1
        ? { kind: 'held', until: held, then: { kind: 'valid' } }
        : undefined;
    };
    try {
      const id = await stack.submitAi('bench-recovery', `Recover (${marker})`);
      await eventually(
        async () => calls.length,
        (count) => count >= 1,
        {
          what: 'the held model call',
          timeoutMs: 60_000,
          intervalMs: 20,
        },
      );
      const description = await stack.temporal.client.workflow.getHandle(id).describe();
      const identity = description.raw.pendingActivities?.[0]?.lastWorkerIdentity ?? '';
      const running = stack.workers.find((worker) => identity.startsWith(`${worker.child.pid}@`));
      if (!running) throw new Error(`no worker of ours runs the call (identity "${identity}")`);
      const killedAt = performance.now();
      await stack.killWorker(running);
      await eventually(
        async () => calls.length,
        (count) => count >= 2,
        {
          what: 'the model call made again',
          timeoutMs: 300_000,
          intervalMs: 20,
        },
      );
      const resumed = (calls[1]! - killedAt) / 1000;
      await stack.result(id);
      const completed = (performance.now() - killedAt) / 1000;
      printFigure(
        'recovery',
        { label: 'SIGKILL → model call again', value: resumed, unit: 's' },
        {
          label: 'the job undisturbed, submit→completed p50',
          value: latencySummary(undisturbed).p50 / 1000,
          unit: 's',
        },
        '≤ 15 s resumed',
      );
      printNote(
        `SIGKILL → job completed: ${completed.toFixed(1)} s; spare worker pid ${spare.child.pid} took over`,
      );
    } finally {
      stack.google.scenario.answerFor = null;
      release();
    }
  },
};
