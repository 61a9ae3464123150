// Completed probe jobs per second ÷ bare workflows per second with the same activities: N of
// each submitted by several users at a time, from the first submit to the last completion. What
// each process spent on the CPU a job, for each, says where the difference goes.
import type { Scenario } from '../scenario.js';
import { cpuPerJob } from '../cpu.js';
import { inParallel, timed } from '../scenario.js';
import { printFigure, printNote } from '../stats.js';

export const throughputScenario: Scenario = {
  name: 'throughput',
  summary: 'completed probe jobs/s ÷ bare workflows/s with the same activities',
  async run({ size, stack: getStack }) {
    const stack = await getStack();
    const jobs = size('jobs', 200, 10);
    const clients = size('clients', 16, 4);
    const rounds = size('rounds', 2, 1);
    const sample = await stack.submitProbe('bench-throughput-0', { steps: 1, stepDelayMs: 0 });
    await stack.result(sample);
    const shape = await stack.activityShape(sample);
    printNote(
      `${jobs} jobs a round, ${clients} users submitting; probe: ${shape.activities} activities, ${shape.localActivities} local`,
    );
    for (let round = 1; round <= rounds; round += 1) {
      const beforeService = await stack.cpuUse();
      const service = await timed(async () => {
        const done: Promise<void>[] = [];
        await inParallel(jobs, clients, async (index) => {
          const id = await stack.submitProbe(`bench-throughput-${index % clients}`, {
            steps: 1,
            stepDelayMs: 0,
          });
          done.push(stack.result(id));
        });
        await Promise.all(done);
      });
      const beforeBare = await stack.cpuUse();
      const bare = await timed(async () => {
        const done: Promise<void>[] = [];
        await inParallel(jobs, clients, async () => {
          done.push(stack.result(await stack.startBare(shape)));
        });
        await Promise.all(done);
      });
      const afterBare = await stack.cpuUse();
      printFigure(
        `throughput round ${round}`,
        { label: 'vlogflow probe', value: (jobs * 1000) / service, unit: 'jobs/s' },
        { label: 'bare workflow', value: (jobs * 1000) / bare, unit: 'jobs/s' },
        '≥ 0.8',
      );
      const serviceCpu = cpuPerJob(beforeService, beforeBare, jobs);
      const bareCpu = cpuPerJob(beforeBare, afterBare, jobs);
      if (serviceCpu && bareCpu) {
        printNote(`vlogflow probe: ${serviceCpu}`);
        printNote(`bare workflow: ${bareCpu}`);
      }
    }
  },
};
