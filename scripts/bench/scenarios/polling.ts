// Status reads per second with N jobs in flight: `GET /api/jobs/:id` by R concurrent readers
// (each read as the job's owner) ÷ the same readers against a Fastify hello-world process.
// Short rounds alternate the two, so both sides meet the same machine; the figure is over all
// rounds. The in-flight jobs are probes waiting on minute-long timers, terminated
// after.
import type { Scenario } from '../scenario.js';
import { inParallel } from '../scenario.js';
import { eventually } from '../../../test/support/eventually.js';
import { freePort } from '../../../test/support/ports.js';
import { latencySummary, printFigure, printNote } from '../stats.js';

interface ReadRun {
  latencies: number[];
  errors: number;
  seconds: number;
}

/** Reads per second over `runs` together. */
function rateOf(runs: ReadRun[]): number {
  const reads = runs.reduce((sum, run) => sum + run.latencies.length, 0);
  return reads / runs.reduce((sum, run) => sum + run.seconds, 0);
}

/** `readers` clients read `urlOf(i)` back to back for `seconds`. */
async function readFor(
  readers: number,
  seconds: number,
  request: (index: number) => Promise<Response>,
): Promise<ReadRun> {
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: readers }, async (_, reader) => {
      for (let index = reader; performance.now() < until; index += readers) {
        const begun = performance.now();
        try {
          const response = await request(index);
          await response.arrayBuffer();
          if (response.status !== 200) errors += 1;
        } catch {
          errors += 1;
        }
        latencies.push(performance.now() - begun);
      }
    }),
  );
  return { latencies, errors, seconds: (performance.now() - started) / 1000 };
}

export const pollingScenario: Scenario = {
  name: 'polling',
  summary: 'status reads/s with N jobs in flight ÷ a Fastify hello-world, p99 and errors',
  async run({ size, stack: getStack }) {
    const stack = await getStack();
    const inFlight = size('in-flight', 1000, 20);
    const readers = size('readers', 16, 4);
    const seconds = size('seconds', 3, 1);
    const rounds = size('rounds', 6, 1);
    const users = 10;
    const jobs: { id: string; user: string }[] = [];
    await inParallel(inFlight, 8, async (index) => {
      const user = `bench-polling-${index % users}`;
      jobs.push({ id: await stack.submitProbe(user, { steps: 100, stepDelayMs: 60_000 }), user });
    });
    const port = await freePort();
    const hello = stack.spawn('scripts/bench/hello-server.ts', {}, [String(port)]);
    await hello.waitForLine(/hello server listening/);
    const headers = new Map(
      await Promise.all(
        Array.from({ length: users }, async (_, index) => {
          const user = `bench-polling-${index}`;
          return [user, { authorization: await stack.authorization(user) }] as const;
        }),
      ),
    );
    // Reads start once every job runs, so they meet jobs waiting on their timers rather than
    // the start-up of a thousand workflows.
    await inParallel(jobs.length, 8, async (index) => {
      const { id, user } = jobs[index]!;
      await eventually(
        () => stack.view(user, id),
        (view) => view.status === 'running',
        { timeoutMs: 300_000, intervalMs: 200, what: `${id} running` },
      );
    });
    printNote(
      `${inFlight} probe jobs in flight; ${readers} readers; ${rounds} rounds of ${seconds} s a side, alternating`,
    );
    const service: ReadRun[] = [];
    const baseline: ReadRun[] = [];
    try {
      for (let round = 1; round <= rounds; round += 1) {
        service.push(
          await readFor(readers, seconds, (index) => {
            const job = jobs[index % jobs.length]!;
            return fetch(`${stack.baseUrl}/api/jobs/${job.id}`, {
              headers: headers.get(job.user)!,
            });
          }),
        );
        baseline.push(
          await readFor(readers, seconds, (index) =>
            fetch(`http://127.0.0.1:${port}/hello/${jobs[index % jobs.length]!.id}`),
          ),
        );
        printNote(
          `round ${round}: vlogflow ${rateOf([service.at(-1)!]).toFixed(0)} reads/s, hello-world ${rateOf([baseline.at(-1)!]).toFixed(0)} reads/s`,
        );
      }
      const serviceLatency = latencySummary(service.flatMap((run) => run.latencies));
      const baselineLatency = latencySummary(baseline.flatMap((run) => run.latencies));
      printFigure(
        'polling reads/s',
        { label: 'GET /api/jobs/:id', value: rateOf(service), unit: 'reads/s' },
        { label: 'Fastify hello-world', value: rateOf(baseline), unit: 'reads/s' },
        '≥ 0.5 at p99 < 50 ms',
      );
      const errors = (runs: ReadRun[]) => runs.reduce((sum, run) => sum + run.errors, 0);
      printNote(
        `p50/p99/max ms: vlogflow ${serviceLatency.p50.toFixed(1)}/${serviceLatency.p99.toFixed(1)}/${serviceLatency.max.toFixed(1)}, ` +
          `hello-world ${baselineLatency.p50.toFixed(1)}/${baselineLatency.p99.toFixed(1)}/${baselineLatency.max.toFixed(1)}; ` +
          `errors: vlogflow ${errors(service)}, hello-world ${errors(baseline)}`,
      );
    } finally {
      await hello.stop();
      await inParallel(jobs.length, 8, async (index) => {
        await stack.temporal.client.workflow
          .getHandle(jobs[index]!.id)
          .terminate('bench polling done')
          .catch(() => undefined);
      });
    }
  },
};
