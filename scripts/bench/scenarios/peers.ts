// The same 4-step job on the queues vlogflow could have been built on, side by side: bare
// Temporal with 4 activities and with 4 local activities, a pg-boss chain (PostgreSQL, each
// step a job that sends the next) and a BullMQ chain (Redis), next to a 4-step vlogflow probe.
// Each prints p50 of one job at a time and jobs/s with several at once.
import { randomUUID } from 'node:crypto';
import { Queue, Worker as BullWorker } from 'bullmq';
import PgBoss from 'pg-boss';
import type { Scenario } from '../scenario.js';
import { inParallel, timed } from '../scenario.js';
import { latencySummary, printFigure, printNote } from '../stats.js';

const steps = 4;
const redisUrl = new URL(process.env['BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379');

interface Chain {
  name: string;
  /** Runs one job of `steps` steps to its end. */
  run(): Promise<void>;
  close(): Promise<void>;
}

/** Chains that end when their last step runs: `finish(id)` settles what `wait(id)` returned. */
function completions() {
  const pending = new Map<string, () => void>();
  return {
    wait: (id: string) => new Promise<void>((resolve) => pending.set(id, resolve)),
    finish(id: string) {
      pending.get(id)?.();
      pending.delete(id);
    },
  };
}

async function pgBossChain(databaseUrl: string, concurrency: number): Promise<Chain> {
  const boss = new PgBoss({ connectionString: databaseUrl, schema: 'bench_pgboss' });
  boss.on('error', (error) => console.error('pg-boss:', error));
  await boss.start();
  const queue = 'bench-chain';
  await boss.createQueue(queue);
  const done = completions();
  const workerIds: string[] = [];
  // A worker fetches again at once only when notified; otherwise it sleeps the polling interval
  // (0.5 s at least). Each step wakes the workers for the step it sends, as an app would.
  const wake = () => workerIds.forEach((id) => boss.notifyWorker(id));
  for (let worker = 0; worker < concurrency; worker += 1) {
    workerIds.push(
      await boss.work<{ chain: string; step: number }>(
        queue,
        { pollingIntervalSeconds: 0.5, batchSize: 1 },
        async ([job]) => {
          const { chain, step } = job!.data;
          if (step < steps) {
            await boss.send(queue, { chain, step: step + 1 });
            wake();
          } else done.finish(chain);
        },
      ),
    );
  }
  return {
    name: 'pg-boss chain',
    async run() {
      const chain = randomUUID();
      const finished = done.wait(chain);
      await boss.send(queue, { chain, step: 1 });
      wake();
      await finished;
    },
    close: () => boss.stop({ graceful: false, wait: true }),
  };
}

async function bullMqChain(concurrency: number): Promise<Chain> {
  const connection = {
    host: redisUrl.hostname,
    port: Number(redisUrl.port || 6379),
    maxRetriesPerRequest: null,
  };
  const name = `bench-chain-${randomUUID().slice(0, 8)}`;
  const queue = new Queue(name, { connection });
  const done = completions();
  const worker = new BullWorker<{ chain: string; step: number }>(
    name,
    async (job) => {
      const { chain, step } = job.data;
      if (step < steps)
        await queue.add('step', { chain, step: step + 1 }, { removeOnComplete: true });
      else done.finish(chain);
    },
    { connection, concurrency },
  );
  await worker.waitUntilReady();
  return {
    name: 'BullMQ chain',
    async run() {
      const chain = randomUUID();
      const finished = done.wait(chain);
      await queue.add('step', { chain, step: 1 }, { removeOnComplete: true });
      await finished;
    },
    async close() {
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
    },
  };
}

export const peersScenario: Scenario = {
  name: 'peers',
  summary:
    'a 4-step job on bare Temporal (activities, local activities), pg-boss and BullMQ, next to a vlogflow probe',
  async run({ size, stack: getStack }) {
    const stack = await getStack();
    const allInOne = await getStack('all-in-one');
    const sequential = size('jobs', 30, 3);
    const concurrentJobs = size('concurrent-jobs', 200, 10);
    const concurrency = size('clients', 16, 4);
    const chains: Chain[] = [
      {
        name: 'Temporal, 4 activities',
        run: () => stack.runBare({ activities: steps, localActivities: 0 }),
        close: async () => undefined,
      },
      {
        name: 'Temporal, 4 local activities',
        run: () => stack.runBare({ activities: 0, localActivities: steps }),
        close: async () => undefined,
      },
      await pgBossChain(stack.env['DATABASE_URL']!, concurrency),
      await bullMqChain(concurrency),
      ...[stack, allInOne].map((service) => ({
        name: `vlogflow probe, ${service.topology}`,
        run: async () =>
          service.result(await service.submitProbe('bench-peers', { steps, stepDelayMs: 0 })),
        close: async () => undefined,
      })),
    ];
    const results = new Map<string, { p50: number; rate: number }>();
    try {
      for (const chain of chains) await chain.run();
      const latencies = new Map(chains.map((chain) => [chain.name, [] as number[]]));
      // Alternate: job i of every chain before job i + 1 of any.
      for (let job = 0; job < sequential; job += 1)
        for (const chain of chains) latencies.get(chain.name)!.push(await timed(() => chain.run()));
      for (const chain of chains) {
        const elapsed = await timed(() =>
          inParallel(concurrentJobs, concurrency, () => chain.run()),
        );
        results.set(chain.name, {
          p50: latencySummary(latencies.get(chain.name)!).p50,
          rate: (concurrentJobs * 1000) / elapsed,
        });
      }
    } finally {
      for (const chain of chains) await chain.close();
    }
    printNote(
      `p50 of ${sequential} jobs one at a time; jobs/s of ${concurrentJobs} jobs, ${concurrency} at a time`,
    );
    for (const [name, { p50, rate }] of results)
      printNote(
        `${name.padEnd(30)} p50 ${p50.toFixed(1).padStart(7)} ms   ${rate.toFixed(1).padStart(7)} jobs/s`,
      );
    const bare = results.get('Temporal, 4 activities')!;
    const pgBoss = results.get('pg-boss chain')!;
    for (const service of [stack, allInOne]) {
      const name = `vlogflow probe, ${service.topology}`;
      printFigure(
        `peers vlogflow ${service.topology} p50`,
        { label: name, value: results.get(name)!.p50, unit: 'ms' },
        { label: 'pg-boss chain', value: pgBoss.p50, unit: 'ms' },
        '≤ 1',
      );
    }
    for (const name of [
      'Temporal, 4 local activities',
      'pg-boss chain',
      'BullMQ chain',
      'vlogflow probe, separate',
      'vlogflow probe, all-in-one',
    ]) {
      const peer = results.get(name)!;
      printFigure(
        `peers ${name} p50`,
        { label: name, value: peer.p50, unit: 'ms' },
        { label: 'Temporal, 4 activities', value: bare.p50, unit: 'ms' },
      );
      printFigure(
        `peers ${name} jobs/s`,
        { label: name, value: peer.rate, unit: 'jobs/s' },
        { label: 'Temporal, 4 activities', value: bare.rate, unit: 'jobs/s' },
      );
    }
  },
};
