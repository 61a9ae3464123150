import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ActivityDependencies } from '../../src/activities/index.js';
import { loadConfig } from '../../src/config.js';
import { readJobEvents } from '../../src/db/job-events.js';
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import { startHarness, testJwtSecret, type Harness } from '../support/harness.js';

interface AiJobView {
  status: string;
  error: { code: string; message: string } | null;
  result: {
    items: { title: string; description: string }[];
    model: string;
    provider: string;
    notice: string | null;
  } | null;
}

// With no provider configured, an AI job runs on the embedded model: the real llama.cpp
// server and the tiny GGUF model that embedded-model/install.sh put in .local/ (test/run.ts
// installs them). Kept to one short job: the model generates a few dozen tokens a second here.
describe('AI jobs on the embedded model, with nothing configured', () => {
  let h: Harness;
  let dependencies: ActivityDependencies;

  before(async () => {
    const env = {
      AUTH_JWT_SECRET: testJwtSecret,
      DATA_DIR: path.join(os.tmpdir(), `vlogflow-ai-embedded-${randomUUID()}`),
    };
    h = await startHarness({
      env,
      worker: async (db) => (dependencies = await createActivityDependencies(loadConfig(env), db)),
    });
  });
  after(async () => {
    await h.stop();
    await dependencies.providers.embeddedModel?.stop();
  });

  it('completes offline with valid items, naming the provider, the model and that it is tiny', async () => {
    const user = h.user('offline');
    const { id } = await user.startJob('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Learn to bake bread', maxItems: 1 },
    });
    const done = await user.awaitJob<AiJobView>(
      'ai',
      id,
      (view) => !['pending', 'queued', 'processing'].includes(view.status),
      { what: 'the embedded model to answer', timeoutMs: 180_000, intervalMs: 250 },
    );
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(done.result?.provider, 'embedded');
    assert.equal(done.result?.model, 'SmolLM2-135M-Instruct.Q4_1');
    assert.match(done.result?.notice ?? '', /tiny/);
    assert.equal(done.result?.items.length, 1);
    assert.ok(done.result?.items[0]?.title.trim());

    // The answer streamed through llama.cpp's server into the job's event log as it was written.
    const log = await readJobEvents(h.db, [{ jobId: id, afterSeq: -1 }], 1_000);
    const answers: string[] = [];
    for (const { event } of log) {
      if (!event.output) continue;
      if (event.output.offset === 0) answers.push('');
      answers[answers.length - 1] += event.output.text;
    }
    const streamed = JSON.parse(answers.at(-1) ?? '') as { items: { title: string }[] };
    assert.equal(streamed.items[0]?.title.trim(), done.result?.items[0]?.title);
  });
});
