import { Context } from '@temporalio/activity';
import { createActivities } from '../../src/activities/index.js';
import { loadConfig } from '../../src/config.js';
import type { Db } from '../../src/db/database.js';
import { createAiGenerationActivities } from '../../src/kinds/ai/activities.js';
import { createProviders } from '../../src/providers/index.js';
import type { FakeGoogle } from '../fakes/fake-google.js';

type Generation = ReturnType<ReturnType<typeof createAiGenerationActivities>['generateAiItems']>;

/**
 * Every activity of a worker whose AI jobs ask `google`, with each attempt of the model call
 * run through `around` (which may freeze it, or lose its report after the answer), and the
 * attempts that ran, in order.
 */
export function aiActivitiesOnFakeGoogle(
  db: Db,
  google: FakeGoogle,
  around: (attempt: number, generate: () => Generation) => Generation,
) {
  const mediaStorage = undefined as never;
  const deps = {
    db,
    mediaStorage,
    providers: createProviders(
      loadConfig({ GEMINI_API_KEY: 'test-key', GEMINI_BASE_URL: google.url }),
      { mediaStorage, mediaTools: null },
    ),
    mediaTools: null,
  };
  const ai = createAiGenerationActivities(deps);
  const attempts: number[] = [];
  const activities = {
    ...createActivities(deps),
    generateAiItems(input: Parameters<typeof ai.generateAiItems>[0]): Generation {
      const { attempt } = Context.current().info;
      attempts.push(attempt);
      return around(attempt, () => ai.generateAiItems(input));
    },
  };
  return { activities, attempts };
}
