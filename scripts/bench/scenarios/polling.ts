// Status reads per second with N jobs in flight: `GET /api/jobs/:id` by R concurrent readers
// (each read as the job's owner) ÷ the same readers against a Fastify hello-world process.
// Rounds alternate the two. The in-flight jobs are probes waiting on minute-long timers, terminated
// after.
import type { Scenario } from '../scenario.js';
import { inParallel } from '../scenario.js';
import { freePort } from '../../../test/support/ports.js';
import { latencySummary, printFigure, printNote } from '../stats.js';

interface ReadRun {
  latencies: number[];
  errors: number;
  seconds: number;
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
    const inFlight = size('in-flight', 200, 20);
    const readers = size('readers', 16, 4);
    const seconds = size('seconds', 10, 2);
    const rounds = size('rounds', 2, 1);
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
    printNote(`${inFlight} probe jobs in flight; ${readers} readers, ${seconds} s a side a round`);
    try {
      for (let round = 1; round <= rounds; round += 1) {
        const service = await readFor(readers, seconds, (index) => {
          const job = jobs[index % jobs.length]!;
          return fetch(`${stack.baseUrl}/api/jobs/${job.id}`, { headers: headers.get(job.user)! });
        });
        const baseline = await readFor(readers, seconds, (index) =>
          fetch(`http://127.0.0.1:${port}/hello/${jobs[index % jobs.length]!.id}`),
        );
        const [serviceLatency, baselineLatency] = [
          latencySummary(service.latencies),
          latencySummary(baseline.latencies),
        ];
        printFigure(
          `polling round ${round} reads/s`,
          {
            label: 'GET /api/jobs/:id',
            value: serviceLatency.count / service.seconds,
            unit: 'reads/s',
          },
          {
            label: 'Fastify hello-world',
            value: baselineLatency.count / baseline.seconds,
            unit: 'reads/s',
          },
          '≥ 0.5 at p99 < 50 ms',
        );
        printNote(
          `p50/p99/max ms: vlogflow ${serviceLatency.p50.toFixed(1)}/${serviceLatency.p99.toFixed(1)}/${serviceLatency.max.toFixed(1)}, ` +
            `hello-world ${baselineLatency.p50.toFixed(1)}/${baselineLatency.p99.toFixed(1)}/${baselineLatency.max.toFixed(1)}; ` +
            `errors: vlogflow ${service.errors}, hello-world ${baseline.errors}`,
        );
      }
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
