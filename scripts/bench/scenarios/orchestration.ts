// p50 submit→completed of a vlogflow job with instant providers ÷ a bare workflow with the same
// activities (bare-workflows.ts), idle and while other users' probe jobs keep the service busy,
// with the API and worker as separate processes and in one process (which starts eagerly).
// Jobs of both sides alternate, so both meet the same machine. Under the service's load the bare
// workflow's own worker stays idle; "both loaded" also keeps it as busy, with as many clients
// running bare workflows of the probe's shape back to back, so each side waits behind its own.
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
      const shapeOf = async (run: typeof submit) => {
        const sample = await run(stack, 'bench-orchestration');
        await stack.result(sample);
        return stack.activityShape(sample);
      };
      const shape = await shapeOf(submit);
      // The bare load's workflows are the service load's probes, run bare.
      const probeShape = kind === 'probe' ? shape : await shapeOf(kinds.probe);
      printNote(
        `${kind} job, ${topology}: ${shape.activities} activities, ${shape.localActivities} local activities; the bare workflow runs the same`,
      );
      for (const condition of ['idle', 'loaded', 'both-loaded'] as const) {
        let loading = condition !== 'idle';
        const serviceLoad = Array.from({ length: loading ? loadClients : 0 }, async (_, client) => {
          while (loading) {
            const id = await stack.submitProbe(`bench-load-${client}`, {
              steps: 1,
              stepDelayMs: 0,
            });
            await stack.result(id);
          }
        });
        const bareLoad = Array.from(
          { length: condition === 'both-loaded' ? loadClients : 0 },
          async () => {
            while (loading) await stack.runBare(probeShape);
          },
        );
        const load = [...serviceLoad, ...bareLoad];
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
        const described = {
          idle: 'idle',
          loaded: `under load (${loadClients} users submitting back to back)`,
          'both-loaded': `both under load (${loadClients} users submitting, ${loadClients} clients running bare workflows, back to back)`,
        }[condition];
        printFigure(
          `orchestration ${kind} ${topology} ${condition} p50`,
          {
            label: `vlogflow ${kind}, ${topology}, ${described}`,
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
