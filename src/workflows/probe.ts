import { sleep } from '@temporalio/workflow';
import type { ProbeJobInput, ProbeJobResult } from '../jobs/messages.js';
import { JobTracker } from './job-tracker.js';

/**
 * A diagnostic job that exercises every layer (API → Temporal → worker → activity →
 * database → API) without calling any provider: it walks its steps on durable timers and
 * records its progress after each.
 */
export async function probeJob({ job }: ProbeJobInput): Promise<ProbeJobResult> {
  const tracker = new JobTracker(job);
  const { steps, stepDelayMs } = job.input;
  return tracker.run('running', async () => {
    for (let step = 1; step <= steps; step += 1) {
      if (stepDelayMs > 0) await sleep(stepDelayMs);
      await tracker.update({
        progress: Math.floor((step * 100) / steps),
        phase: `step ${step} of ${steps}`,
      });
    }
    return { stepsCompleted: steps };
  });
}
