import { sleep } from '@temporalio/workflow';
import { JobTracker } from '../../workflows/job-tracker.js';
import { probeKind, type ProbeJobInput, type ProbeJobResult } from './declaration.js';

/** The probe walks its steps on durable timers and records its progress after each. */
export async function probeJob({ job }: ProbeJobInput): Promise<ProbeJobResult> {
  const tracker = new JobTracker(job);
  const { steps, stepDelayMs } = job.input;
  const [running] = probeKind.stages;
  return tracker.run({ status: running.status, noun: probeKind.noun }, async () => {
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
