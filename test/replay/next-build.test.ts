// A deploy of workflow code that differs, the way docs/operations.md tells it: a job runs half
// way on the current build; the replay check of its live history passes against the next
// build, whose change is behind patched(), and fails against the same change without it; the
// old worker stops, one on the next build takes over, and the job completes on it.
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { RunningWorker } from '../../src/worker/worker.js';
import { queryRuns, workflowRuns } from '../../src/replay/histories.js';
import {
  bundleWorkflows,
  describeOutcome,
  replayRuns,
  type ReplayOutcome,
  type WorkflowCode,
} from '../../src/replay/replayer.js';
import { installWorkerRuntime } from '../../src/worker/runtime.js';
import { eventually } from '../support/eventually.js';
import { startHarness, type Harness } from '../support/harness.js';
import { testLogger } from '../support/logs.js';
import { startTestWorker } from '../support/temporal.js';

interface ProbeView {
  id: string;
  status: string;
  progress: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const nextBuild = path.join(here, 'changed-workflows/probe-patched.ts');
const unpatchedBuild = path.join(here, 'changed-workflows/probe-unpatched.ts');

describe('deploying workflow code that differs', () => {
  let h: Harness;
  const workers: RunningWorker[] = [];

  before(async () => {
    await installWorkerRuntime(testLogger());
    h = await startHarness({});
  });
  after(async () => {
    for (const worker of workers) await worker.stop();
    await h.stop();
  });

  async function replay(id: string, code: WorkflowCode): Promise<ReplayOutcome[]> {
    const outcomes: ReplayOutcome[] = [];
    for await (const outcome of replayRuns(await workflowRuns(h.temporal.client, id), code))
      outcomes.push(outcome);
    return outcomes;
  }

  /**
   * The ids of the patches a run recorded, once it has closed: its row can read the end before
   * the history holds the task that wrote it (the write runs inside that task).
   */
  const patchesOf = async (id: string) => {
    const handle = h.temporal.client.workflow.getHandle(id);
    await handle.result();
    return ((await handle.fetchHistory()).events ?? []).flatMap((event) => {
      const marker = event.markerRecordedEventAttributes;
      if (marker?.markerName !== 'core_patch') return [];
      const data = marker.details?.['patch-data']?.payloads?.[0]?.data;
      return data ? [(JSON.parse(Buffer.from(data).toString('utf8')) as { id: string }).id] : [];
    });
  };

  it('a job half way on the current build passes the replay check of the next one and completes on it', async () => {
    const alice = h.user('alice');
    const waitFor = (id: string, done: (view: ProbeView) => boolean, what: string) =>
      eventually(() => alice.view<ProbeView>('probe', id), done, {
        what,
        timeoutMs: 120_000,
        intervalMs: 50,
      });
    const current = await startTestWorker(h.taskQueue, { db: h.db });
    workers.push(current);
    const started = await alice.post('/api/probes', { steps: 2, stepDelayMs: 3_000 });
    assert.equal(started.statusCode, 202, started.body);
    const { id } = started.json<ProbeView>();
    await waitFor(id, (view) => view.progress === 50, 'the probe half way');
    await current.stop();
    assert.equal((await alice.view<ProbeView>('probe', id)).status, 'running');

    // Step 2 of the procedure: the live history against the next build.
    const [patchedCode, unpatchedCode] = await Promise.all([
      bundleWorkflows(nextBuild),
      bundleWorkflows(unpatchedBuild),
    ]);
    const fits = await replay(id, patchedCode);
    assert.equal(fits.length, 1);
    assert.match(describeOutcome(fits[0]!), new RegExp(`^ok +${id}$`));
    const [broken] = await replay(id, unpatchedCode);
    assert.ok(broken?.divergence, describeOutcome(broken!));
    assert.match(describeOutcome(broken), /^DIVERGED /);

    const next = await startTestWorker(
      h.taskQueue,
      { db: h.db },
      testLogger(),
      undefined,
      undefined,
      undefined,
      nextBuild,
    );
    workers.push(next);
    const done = await waitFor(id, (view) => view.status !== 'running', 'the probe done');
    assert.equal(done.status, 'completed');
    // It kept the path it started on, and its whole history replays on the next build.
    assert.ok(!(await patchesOf(id)).includes('probe-settles-first'));
    assert.equal((await replay(id, patchedCode))[0]?.divergence, null);

    // A job started on the next build takes the new path.
    const fresh = await alice.post('/api/probes', { steps: 1, stepDelayMs: 0 });
    const freshId = fresh.json<ProbeView>().id;
    await waitFor(freshId, (view) => view.status === 'completed', 'a new probe completed');
    assert.ok((await patchesOf(freshId)).includes('probe-settles-first'));
  });

  // A reset's run starts with a copy of the first run's start event, whose
  // originalExecutionRunId is the first run's id: named by it, a divergence pointed at the
  // wrong run, and `histories:record --from-server <query>` saved both runs to one file.
  it('names each run it replays by its own run id, a reset run too', async () => {
    const { client } = h.temporal;
    workers.push(await startTestWorker(h.taskQueue, { db: h.db }));
    const started = await h.user('alice').post('/api/probes', { steps: 1, stepDelayMs: 60_000 });
    const { id } = started.json<ProbeView>();
    const first = client.workflow.getHandle(id);
    const firstRunId = (await first.describe()).runId;
    const history = await eventually(
      () => first.fetchHistory(),
      (events) => (events.events ?? []).some((event) => event.timerStartedEventAttributes),
      { what: 'the probe waiting on its timer' },
    );
    const lastTask = (history.events ?? []).findLast(
      (event) => event.workflowTaskCompletedEventAttributes,
    )!;
    await first.terminate('to reset it');
    const { runId: resetRunId } = await client.workflowService.resetWorkflowExecution({
      namespace: client.options.namespace,
      workflowExecution: { workflowId: id, runId: firstRunId },
      reason: 'a run of its own',
      workflowTaskFinishEventId: lastTask.eventId,
      requestId: randomUUID(),
    });
    after(() => client.workflow.getHandle(id).terminate('test over'));

    const byId = await workflowRuns(client, id);
    assert.deepEqual(
      byId.map((run) => run.runId),
      [resetRunId],
    );
    const listed = async () => {
      const runs: string[] = [];
      for await (const run of queryRuns(client, `WorkflowId = "${id}"`, 10)) runs.push(run.runId);
      return runs.sort();
    };
    await eventually(listed, (runs) => runs.length === 2, { what: 'both runs listed' });
    assert.deepEqual(await listed(), [firstRunId, resetRunId].sort());
  });
});
