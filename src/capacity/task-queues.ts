/**
 * The queue map: every domain of work has a task queue of its own, so a backlog in one (a
 * thousand generations waiting on a provider, a pile of renders) never holds the slots another
 * needs, and an operator scales, throttles or moves one domain alone. Names are derived from
 * TEMPORAL_TASK_QUEUE; a job carries the names in its workflow input (its settings), so a run
 * keeps the queues it started with. Pure: workflow code may import it.
 */

/** The domains, in the order docs/operations.md lists them. */
export const taskQueueDomains = [
  'workflows',
  'analysis',
  'video-generation',
  'text-generation',
  'media',
  'transfer',
  'storage',
  'inspection',
] as const;

export type TaskQueueDomain = (typeof taskQueueDomains)[number];

/** The domains whose queue holds activities only (every domain but `workflows`). */
export type ActivityDomain = Exclude<TaskQueueDomain, 'workflows'>;

/** What runs on each domain's queue, as the queue map in docs/operations.md says it. */
export const taskQueueWork: Record<TaskQueueDomain, string> = {
  workflows:
    'every workflow task, and the job projection (local activities of the workflow task); activities of runs started before the queue map',
  analysis: 'media analysis by Gemini (`analyzeMedia`)',
  'video-generation':
    'Veo submissions and status checks (`startVideoGeneration`, `checkVideoGeneration`); the check of a local render',
  'text-generation': 'AI job model calls (`generateAiItems`)',
  media:
    'ffmpeg-bound steps of the local provider: analysis and render (`analyzeMedia`, `startVideoGeneration`)',
  transfer: 'copies of generated videos into media storage (`transferVideo`)',
  storage:
    'storage upkeep: cleanup of a cancelled vlog, measuring a delivered video, the media sweep (`cleanupVlog`, `describeVideo`, `deleteExpiredMedia`)',
  inspection: 'ffprobe reads of an upload before its job starts (`inspectStoredMedia`)',
};

/** Every domain's queue name. */
export type TaskQueueNames = Record<TaskQueueDomain, string>;

/**
 * The queue of each domain: `workflows` is the base queue itself (TEMPORAL_TASK_QUEUE),
 * the others `<base>-<domain>` (`<base>-media` is the media queue of earlier versions).
 */
export function taskQueueNames(base: string): TaskQueueNames {
  return Object.fromEntries(
    taskQueueDomains.map((domain) => [domain, domain === 'workflows' ? base : `${base}-${domain}`]),
  ) as TaskQueueNames;
}

/**
 * The domains named in a comma-separated list (`media,transfer`), in map order, each once;
 * throws naming `source` (the flag or variable it came from) and the known domains when a name
 * is not one.
 */
export function parseTaskQueueDomains(list: string, source: string): TaskQueueDomain[] {
  const names = list
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  const unknown = names.filter((name) => !(taskQueueDomains as readonly string[]).includes(name));
  if (names.length === 0 || unknown.length > 0) {
    throw new Error(
      `${source}: ${
        names.length === 0
          ? 'names no queue'
          : `unknown queue ${unknown.map((name) => JSON.stringify(name)).join(', ')}`
      }; expected a comma-separated list of ${taskQueueDomains.join(', ')}`,
    );
  }
  return taskQueueDomains.filter((domain) => names.includes(domain));
}
