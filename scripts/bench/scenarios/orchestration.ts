// p50 submit→completed of a vlogflow job with instant providers ÷ a bare workflow with the same
// activities (bare-workflows.ts), idle and while other users' probe jobs keep the service busy,
// with the API and worker as separate processes and in one process (which starts eagerly).
// Jobs of both sides alternate, so both meet the same machine.
import type { Scenario } from '../scenario.js';
import { timed } from '../scenario.js';
import type { BenchStack, Topology } from '../stack.js';
import { latencySummary, printFigure, printNote } from '../stats.js';

const kinds = {
  probe: (stack: BenchStack, user: string) => stack.submitProbe(user, { steps: 1, stepDelayMs: 0 }),
  ai: (stack: BenchStack, user: string) => stack.submitAi(user),
};

export const orchestrationScenario: Scenario = {
  name: 'orchestration',
  summary:
    'p50 submit→completed of a probe and an AI job ÷ a bare workflow of the same activities, idle and under load',
  async run({ size, stack: getStack }) {
    const jobs = size('jobs', 30, 3);
    const loadClients = size('load', 8, 2);
    const topologies: Topology[] = ['separate', 'all-in-one'];
    for (const [topology, [kind, submit]] of topologies.flatMap((topology) =>
      Object.entries(kinds).map((entry) => [topology, entry] as const),
    )) {
      const stack = await getStack(topology);
      const sample = await submit(stack, 'bench-orchestration');
      await stack.result(sample);
      const shape = await stack.activityShape(sample);
      printNote(
        `${kind} job, ${topology}: ${shape.activities} activities, ${shape.localActivities} local activities; the bare workflow runs the same`,
      );
      for (const loaded of [false, true]) {
        let loading = loaded;
        const load = Array.from({ length: loaded ? loadClients : 0 }, async (_, client) => {
          while (loading) {
            const id = await stack.submitProbe(`bench-load-${client}`, {
              steps: 1,
              stepDelayMs: 0,
            });
            await stack.result(id);
          }
        });
        const service: number[] = [];
        const bare: number[] = [];
        for (let job = 0; job < jobs; job += 1) {
          service.push(
            await timed(async () => stack.result(await submit(stack, 'bench-orchestration'))),
          );
          bare.push(await timed(() => stack.runBare(shape)));
        }
        loading = false;
        await Promise.all(load);
        const condition = loaded
          ? `under load (${loadClients} users submitting back to back)`
          : 'idle';
        printFigure(
          `orchestration ${kind} ${topology} ${loaded ? 'loaded' : 'idle'} p50`,
          {
            label: `vlogflow ${kind}, ${topology}, ${condition}`,
            value: latencySummary(service).p50,
            unit: 'ms',
          },
          { label: 'bare workflow', value: latencySummary(bare).p50, unit: 'ms' },
          '≤ 1.1',
        );
      }
    }
  },
};
