import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import { createActivities } from '../../src/activities/index.js';
import { readHistoryFile } from '../../src/replay/histories.js';
import {
  bundleWorkflows,
  describeOutcome,
  replayRuns,
  type ReplayOutcome,
  type WorkflowCode,
} from '../../src/replay/replayer.js';
import { installWorkerRuntime } from '../../src/worker/runtime.js';
import * as workflows from '../../src/workflows/index.js';
import { sourceWorkflowBundle } from '../../src/worker/workflow-bundles.js';
import { testLogger } from '../support/logs.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const historiesDir = path.resolve(here, '../histories');
const historyFiles = readdirSync(historiesDir, { recursive: true, encoding: 'utf8' })
  .filter((entry) => entry.endsWith('.json'))
  .sort();

async function replayFile(file: string, code: WorkflowCode): Promise<ReplayOutcome> {
  const run = await readHistoryFile(path.join(historiesDir, file));
  for await (const outcome of replayRuns([run], code)) return outcome;
  throw new Error(`no replay outcome for ${file}`);
}

// Every path of every workflow was recorded from a real run (`npm run histories:record`); if
// the current code would make different commands for any of them, running workflows would
// be stuck after a deploy.
describe('recorded histories replay against the current workflow code', () => {
  let code: WorkflowCode;
  before(async () => {
    await installWorkerRuntime(testLogger());
    code = { workflowBundle: await sourceWorkflowBundle(false) };
  });

  // `cancel-by-signal` runs were recorded when the API cancelled with a signal, before it sent
  // the cancel Update; runs that received that signal must still replay. `queue-map` runs were
  // recorded with the projection as local activities and each step on its domain's queue; the
  // others before, and runs started then must still replay. `first-state` runs registered
  // their job with its first stage in one write; the others in two. `vlogJob/before-cleanup-waits/`
  // holds a run whose cleanup did not wait for its cancelled render; runs started then must
  // still replay so. `reconcileJobProjections/before-lease-freeing/` holds runs recorded before
  // a run freed the leases of operations ended jobs left running, `before-cost-hold-release/`
  // runs recorded before it released the cost holds left open; `sweepExpiredMedia/
  // before-orphan-uploads/` a sweep from before it deleted the uploads APIs left.
  it('has recordings of every job path, retries as continue-as-new chains', () => {
    const expected = {
      vlogJob: [
        'before-cleanup-waits/cancel-generation-start',
        'success',
        'queue-map',
        'first-state',
        'cancel-analysis',
        'cancel-generation',
        'cancel-generation-start',
        'cancel-transfer',
        'cancel-by-signal',
        'retry.run1',
        'retry.run2',
        'deadline',
      ],
      aiGenerationJob: [
        'success',
        'queue-map',
        'first-state',
        'cancel',
        'cancel-by-signal',
        'retry.run1',
        'retry.run2',
        'timeout',
      ],
      sweepExpiredMedia: ['before-orphan-uploads/sweep', 'sweep'],
      reconcileJobProjections: [
        'before-lease-freeing/terminated',
        'before-cost-hold-release/terminated',
        'terminated',
      ],
      recordDeferredCharge: ['database-stalled'],
    };
    for (const [workflowType, scenarios] of Object.entries(expected)) {
      for (const scenario of scenarios) {
        const file = path.join(workflowType, `${scenario}.json`);
        assert.ok(historyFiles.includes(file), file);
      }
    }
    // A workflow type the worker gains (a new job kind's) is held to a recording of its own:
    // without one, nothing here would replay it before a change to it ships.
    const unrecorded = Object.keys(workflows).filter(
      (workflowType) => !historyFiles.some((file) => file.startsWith(`${workflowType}${path.sep}`)),
    );
    assert.deepEqual(unrecorded, [], 'workflow types without a recorded history (docs/replay.md)');
  });

  // Replay checks the workflows' commands, not the worker: an activity renamed or dropped in
  // the worker would replay fine and then leave running workflows with no one to run it.
  it('schedules only activities the worker registers', async () => {
    const registered = Object.keys(
      createActivities({
        db: null as never,
        mediaStorage: null as never,
        providers: null as never,
        mediaTools: null,
      }),
    );
    const scheduled = new Set<string>();
    for (const file of historyFiles) {
      const run = await readHistoryFile(path.join(historiesDir, file));
      for (const event of run.history.events ?? []) {
        const name = event.activityTaskScheduledEventAttributes?.activityType?.name;
        if (name) scheduled.add(name);
      }
    }
    assert.ok(scheduled.has('transferVideo'), [...scheduled].join(', '));
    assert.deepEqual(
      [...scheduled].filter((name) => !registered.includes(name)),
      [],
    );
  });

  for (const file of historyFiles) {
    it(file, async () => {
      const outcome = await replayFile(file, code);
      assert.ok(!outcome.divergence && !outcome.error, describeOutcome(outcome));
    });
  }
});

describe('replay catches a workflow change that breaks determinism', () => {
  const success = 'vlogJob/success.json';
  before(() => installWorkerRuntime(testLogger()));

  it('names the workflow id and the event the SDK names', async () => {
    const code = await bundleWorkflows(path.join(here, 'changed-workflows/timer-first.ts'));
    const outcome = await replayFile(success, code);
    assert.ok(outcome.divergence, describeOutcome(outcome));
    assert.equal(outcome.divergence.eventId, 5);
    assert.equal(outcome.divergence.eventType, 'ActivityTaskScheduled');
    assert.equal(outcome.divergence.eventDetail, 'registerJob');
    const line = describeOutcome(outcome);
    assert.match(line, new RegExp(`^DIVERGED .*workflow ${outcome.run.workflowId} at event 5 `));
    assert.match(line, /ActivityTaskScheduled \(registerJob\)/);
  });

  it('finds the event when the SDK names only the mismatched activities', async () => {
    const code = await bundleWorkflows(path.join(here, 'changed-workflows/analysis-first.ts'));
    const outcome = await replayFile(success, code);
    assert.ok(outcome.divergence, describeOutcome(outcome));
    // The second activity of the recording: the projection of `analyzing`.
    const recorded = (outcome.run.history.events ?? []).filter(
      (event) => event.activityTaskScheduledEventAttributes,
    )[1];
    assert.equal(outcome.divergence.eventId, Number(String(recorded?.eventId)));
    assert.equal(outcome.divergence.eventType, 'ActivityTaskScheduled');
    assert.equal(outcome.divergence.eventDetail, 'recordJobUpdate');
    assert.match(outcome.divergence.reason, /'recordJobUpdate'.*'analyzeMedia'/);
    assert.match(
      describeOutcome(outcome),
      new RegExp(`workflow ${outcome.run.workflowId} at event ${outcome.divergence.eventId} `),
    );
  });
});
