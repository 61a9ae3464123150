// Test-only: a vlogJob edited carelessly. After registering the job it asks Gemini straight
// away instead of first projecting the `analyzing` status, so the recorded histories' second
// activity (recordJobUpdate) no longer matches what the code schedules (analyzeMedia).
import { proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { SharedActivities } from '../../../src/activities/index.js';
import type { VlogActivities } from '../../../src/kinds/vlog/activities/index.js';
import type { VlogJobInput } from '../../../src/kinds/vlog/declaration.js';
import { JobStatusKey } from '../../../src/jobs/search-attributes.js';

const acts = proxyActivities<SharedActivities & VlogActivities>({ startToCloseTimeout: '1m' });

export async function vlogJob({ job }: VlogJobInput): Promise<void> {
  await acts.registerJob(job);
  upsertSearchAttributes([{ key: JobStatusKey, value: 'analyzing' }]);
  await acts.analyzeMedia({
    jobId: job.id,
    media: job.input.media,
    brief: {
      title: job.input.title,
      prompt: job.input.prompt,
      style: job.input.style,
      durationSeconds: job.input.durationSeconds,
    },
  });
}
