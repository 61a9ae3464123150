import type { VlogInput } from '../../jobs/contracts.js';
import type { JobKindDeclaration } from '../declaration.js';

/**
 * A vlog from uploaded photos and clips: analysis, a generated or locally rendered video, its
 * delivery to media storage. Its workflow is `src/workflows/vlog.ts`, its steps
 * `src/activities/vlog.ts`, its routes `src/api/routes/vlogs.ts` (a multipart upload).
 */
export const vlogKind = {
  kind: 'vlog',
  workflowType: 'vlogJob',
  jobTypes: ['VLOG'],
  noun: 'vlog',
  stages: [
    { status: 'analyzing', progress: 0 },
    { status: 'generating', progress: 25 },
    { status: 'transferring', progress: 75 },
  ],
  // The local provider's analysis and render run ffmpeg on the media queue.
  taskQueues: ['jobs', 'media'],
  summary: ({ input }) =>
    `Vlog "${input.title}": ${input.media.length} files, ${input.durationSeconds}s ${input.aspectRatio}`,
} as const satisfies JobKindDeclaration<'VLOG', VlogInput>;
