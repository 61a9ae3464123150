// A rolling deploy in either order: the API that marks jobs `projectionPatchesApplied` may start
// a job on a worker of the build before it, which asks patched() anyway and records the
// projection's patch markers. A worker of the current build must replay such a history, whole
// or when it takes over half way, as well as the histories it records itself (flagged, no
// markers) and those of jobs without the flag.
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { probeJob } from '../../src/workflows/index.js';
import type { RunningWorker } from '../../src/worker/worker.js';
import { workflowRuns } from '../../src/replay/histories.js';
import { bundleWorkflows, describeOutcome, replayRuns } from '../../src/replay/replayer.js';
import { installWorkerRuntime } from '../../src/worker/runtime.js';
import { eventually } from '../support/eventually.js';
import { startHarness, type Harness } from '../support/harness.js';
import { jobRecord } from '../support/jobs.js';
import { testLogger } from '../support/logs.js';
import { startTestWorker } from '../support/temporal.js';

interface ProbeView {
  id: string;
  status: string;
  progress: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const flagUnawareBuild = path.join(here, 'changed-workflows/probe-flag-unaware.ts');
const currentBuild = path.resolve(here, '../../src/workflows/index.ts');

describe('a mixed deploy of the build that flags projection patches', { timeout: 240_000 }, () => {
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

  /** A worker of the given build (the current one by default) on the harness's queue, stopped with the harness. */
  const startWorker = async (build?: string) => {
    const worker = await startTestWorker(
      h.taskQueue,
      { db: h.db },
      testLogger(),
      undefined,
      undefined,
      undefined,
      build,
    );
    workers.push(worker);
    return worker;
  };

  const historyOf = async (id: string) =>
    (await h.temporal.client.workflow.getHandle(id).fetchHistory()).events ?? [];

  /** The ids of the patches a run recorded, in order. */
  const patchesOf = async (id: string) =>
    (await historyOf(id)).flatMap((event) => {
      const marker = event.markerRecordedEventAttributes;
      if (marker?.markerName !== 'core_patch') return [];
      const data = marker.details?.['patch-data']?.payloads?.[0]?.data;
      return data ? [(JSON.parse(Buffer.from(data).toString('utf8')) as { id: string }).id] : [];
    });

  /**
   * Waits for the probe to end and its run to close; a failed workflow task (a replay that no
   * longer fits) fails at once.
   */
  const completion = async (id: string) => {
    const { failure, view } = await eventually(
      async () => {
        const failed = (await historyOf(id)).find(
          (event) => event.workflowTaskFailedEventAttributes,
        );
        return {
          failure: failed?.workflowTaskFailedEventAttributes?.failure?.message,
          view: await h.user('alice').view<ProbeView>('probe', id),
        };
      },
      ({ failure, view }) =>
        failure !== undefined || (view.status !== 'running' && view.status !== 'pending'),
      { what: `probe ${id} ended`, timeoutMs: 120_000, intervalMs: 50 },
    );
    assert.equal(failure, undefined, `${id}: a workflow task failed`);
    // The row can read the end before the history holds the task that wrote it (its write runs
    // inside that task): the run's close says the history is whole.
    await h.temporal.client.workflow.getHandle(id).result();
    return view;
  };

  const startProbe = async (steps: number, stepDelayMs: number) => {
    const started = await h.user('alice').post('/api/probes', { steps, stepDelayMs });
    assert.equal(started.statusCode, 202, started.body);
    return started.json<ProbeView>().id;
  };

  it('replays flagged runs recorded by the build before it, whole or taken over half way, and its own', async () => {
    const firstState = 'job-projection-first-state-with-registration';
    // Both builds ask it (the old one is today's tracker with the flag dropped), and a run
    // whose writes go behind asks no other patch of the projection's local activities. Every
    // run asks the writes' own two patches, flagged or not.
    const writesBehind = ['job-projection-writes-behind', 'job-projection-writes-settle'];

    // The old worker runs one probe to the end and the first workflow task of another.
    const old = await startWorker(flagUnawareBuild);
    const wholeOnOld = await startProbe(1, 0);
    const takenOver = await startProbe(2, 5_000);
    assert.equal((await completion(wholeOnOld)).status, 'completed');
    await eventually(
      () => h.user('alice').view<ProbeView>('probe', takenOver),
      (view) => view.status === 'running',
      { what: 'the second probe running on the old worker', timeoutMs: 60_000, intervalMs: 50 },
    );
    await old.stop();
    workers.splice(workers.indexOf(old), 1);
    assert.deepEqual(await patchesOf(wholeOnOld), [...writesBehind, firstState]);
    assert.deepEqual(await patchesOf(takenOver), [...writesBehind, firstState]);

    // The current worker has no cache of it: it replays the old worker's task, marker and all,
    // then runs the rest live.
    await startWorker();
    assert.equal((await completion(takenOver)).status, 'completed');
    assert.deepEqual(await patchesOf(takenOver), [...writesBehind, firstState]);

    const wholeOnCurrent = await startProbe(1, 0);
    assert.equal((await completion(wholeOnCurrent)).status, 'completed');
    assert.deepEqual(await patchesOf(wholeOnCurrent), writesBehind);

    const unflagged = jobRecord({ input: { steps: 1, stepDelayMs: 0 } });
    const handle = await h.temporal.client.workflow.start<typeof probeJob>('probeJob', {
      taskQueue: h.taskQueue,
      workflowId: unflagged.id,
      args: [{ job: unflagged }],
    });
    assert.deepEqual(await handle.result(), { stepsCompleted: 1 });
    assert.deepEqual(await patchesOf(unflagged.id), [...writesBehind, firstState]);

    const code = await bundleWorkflows(currentBuild);
    for (const id of [wholeOnOld, takenOver, wholeOnCurrent, unflagged.id]) {
      const outcomes = [];
      for await (const outcome of replayRuns(await workflowRuns(h.temporal.client, id), code))
        outcomes.push(outcome);
      assert.equal(outcomes.length, 1, id);
      assert.match(describeOutcome(outcomes[0]!), new RegExp(`^ok +${id}$`));
    }
  });

  // The reverse move, which any patch has: the build before the flag, replaying a flagged run
  // that the current build advanced, asks patched(), finds no marker and takes the old path.
  // It fails that workflow task, and the run goes on once a current worker takes it.
  it('a flagged run that an old worker picks up from a current one waits for a current worker', async () => {
    for (const worker of workers.splice(0)) await worker.stop();
    const current = await startWorker();
    const id = await startProbe(2, 5_000);
    await eventually(
      () => h.user('alice').view<ProbeView>('probe', id),
      (view) => view.status === 'running',
      { what: 'the probe running on the current worker', timeoutMs: 60_000, intervalMs: 50 },
    );
    await current.stop();
    workers.splice(workers.indexOf(current), 1);

    const old = await startWorker(flagUnawareBuild);
    const [failed] = await eventually(
      async () => (await historyOf(id)).filter((event) => event.workflowTaskFailedEventAttributes),
      (events) => events.length > 0,
      { what: 'the old worker failing the task', timeoutMs: 60_000, intervalMs: 50 },
    );
    assert.match(
      failed?.workflowTaskFailedEventAttributes?.failure?.message ?? '',
      /Nondeterminism error/,
    );
    await old.stop();
    workers.splice(workers.indexOf(old), 1);

    await startWorker();
    const done = await eventually(
      () => h.user('alice').view<ProbeView>('probe', id),
      (view) => view.status !== 'running',
      { what: 'the probe done on a current worker', timeoutMs: 120_000, intervalMs: 100 },
    );
    assert.equal(done.status, 'completed');
    assert.deepEqual(await patchesOf(id), [
      'job-projection-writes-behind',
      'job-projection-writes-settle',
    ]);
  });
});
