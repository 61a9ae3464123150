/**
 * Every workflow path whose history is recorded under test/histories/<workflow type>/<name>.
 * Each scenario drives one real job through the API against the fakes of the e2e tests and
 * returns its workflow id; the recorder waits for every run to close and saves them. A new
 * path (or a new workflow type) is one more entry here.
 */
import { randomUUID } from 'node:crypto';
import proto from '@temporalio/proto';
import { ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { Db } from '../../src/db/database.js';
import { recordUploadBatch } from '../../src/db/upload-batches.js';
import type { JobReconcileResult } from '../../src/jobs/contracts.js';
import { taskQueueNames, type TaskQueueDomain } from '../../src/capacity/task-queues.js';
import type { reconcileJobProjections } from '../../src/workflows/job-reconcile.js';
import type { sweepExpiredMedia } from '../../src/workflows/media-sweep.js';
import { jpegBytes, mp4Bytes, multipartBody, pngBytes } from '../fixtures/media.js';
import type { TestApi } from '../support/harness.js';
import { eventually } from '../support/eventually.js';
import { runScheduledOnce } from '../support/temporal.js';
import type { CloudFakes } from '../support/cloud-fakes.js';

const PendingActivityState = proto.temporal.api.enums.v1.PendingActivityState;

export interface ScenarioContext {
  fakes: CloudFakes;
  api: TestApi;
  client: Client;
  /** The recording worker's task queue, for workflows a scenario starts itself. */
  taskQueue: string;
  /** The database the worker and the API share (embedded: one connection, taken in turn). */
  db: Db;
}

export interface Scenario {
  workflowType: string;
  /** File name under test/histories/<workflow type>/. */
  name: string;
  /** API configuration for this scenario only (deadlines and windows the workflow input carries). */
  env?: Record<string, string>;
  /** Starts the job, drives it down its path and returns the workflow id. */
  run(context: ScenarioContext): Promise<string>;
  /** Checks the finished run took the path the name promises; throws if not. */
  check?(context: ScenarioContext, workflowId: string): Promise<void>;
}

interface VlogView {
  id: string;
  status: string;
  progress: number;
  attempt: number;
  error: { code: string } | null;
}

// Small media and a small video keep the recordings fast; the histories hold keys, not bytes.
function vlogForm() {
  return multipartBody({ title: 'Recorded vlog' }, [
    { field: 'media', filename: 'sunrise.png', contentType: 'image/png', bytes: pngBytes() },
    { field: 'media', filename: 'friends.jpg', contentType: 'image/jpeg', bytes: jpegBytes() },
    { field: 'media', filename: 'waves.mp4', contentType: 'video/mp4', bytes: mp4Bytes(4_096) },
  ]);
}

async function call(api: TestApi, method: 'GET' | 'POST', url: string, payload?: object) {
  const response = await api.user('recorder').request({
    method,
    url,
    ...(payload ? { payload: payload } : {}),
  });
  if (response.statusCode >= 300) throw new Error(`${method} ${url}: ${response.body}`);
  return response.json<VlogView>();
}

async function startVlog({ api }: ScenarioContext): Promise<string> {
  const response = await api.user('recorder').postForm('/api/vlogs', vlogForm());
  if (response.statusCode !== 202) throw new Error(`vlog not accepted: ${response.body}`);
  return response.json<VlogView>().id;
}

function waitForJob(api: TestApi, url: string, done: (view: VlogView) => boolean, what: string) {
  return eventually(() => call(api, 'GET', url), done, { what, timeoutMs: 60_000, intervalMs: 50 });
}

function waitForVlog(api: TestApi, id: string, done: (view: VlogView) => boolean, what: string) {
  return waitForJob(api, `/api/vlogs/${id}`, done, what);
}

async function cancelVlog(api: TestApi, id: string): Promise<void> {
  await call(api, 'POST', `/api/vlogs/${id}/cancel`, { reason: 'recorded cancel' });
  await waitForVlog(api, id, (view) => view.status === 'cancelled', 'vlog cancelled');
}

async function startAiJob({ api }: ScenarioContext): Promise<string> {
  const view = await call(api, 'POST', '/api/ai/jobs', {
    type: 'TASK_GENERATION',
    input: { goal: 'Run a marathon', subGoal: 'Build mileage', action: 'Plan long runs' },
  });
  return view.id;
}

function waitForAiJob(api: TestApi, id: string, done: (view: VlogView) => boolean, what: string) {
  return waitForJob(api, `/api/ai/jobs/${id}`, done, what);
}

/** Starts a probe whose steps take minutes and waits for its first step to be recorded. */
async function startLongProbe(api: TestApi): Promise<VlogView> {
  const view = await call(api, 'POST', '/api/probes', { steps: 10, stepDelayMs: 60_000 });
  await waitForJob(api, `/api/jobs/${view.id}`, (job) => job.status === 'running', 'running');
  return view;
}

/** Waits for the job at `url` to fail, retries it, and waits for the retry to complete. */
async function retryAfterFailure(api: TestApi, url: string): Promise<void> {
  await waitForJob(api, url, (view) => view.status === 'failed', `${url} failed`);
  await call(api, 'POST', `${url}/retry`);
  await waitForJob(
    api,
    url,
    (view) => view.status === 'completed' && view.attempt === 2,
    `${url} retried and completed`,
  );
}

/** Makes the next model call hang, starts a job, and returns once the call has been sent. */
async function startWithHungModelCall(
  context: ScenarioContext,
  start: (context: ScenarioContext) => Promise<string>,
): Promise<string> {
  const { fakes } = context;
  fakes.google.scenario.analysisAnswers = [{ kind: 'hang' }];
  const asked = fakes.google.modelCalls();
  const id = await start(context);
  await eventually(
    () => Promise.resolve(fakes.google.modelCalls() - asked),
    (count) => count === 1,
    { what: 'the model call sent' },
  );
  return id;
}

/**
 * Checks a run took the queue map's path: the job projection as local activities (the patch's
 * marker, no projection activity scheduled) and each activity on its domain's queue.
 */
async function checkQueueMap(
  { client, taskQueue }: ScenarioContext,
  workflowId: string,
  domains: Record<string, TaskQueueDomain>,
): Promise<void> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const patched = events.some(
    (event) => event.markerRecordedEventAttributes?.markerName === 'core_patch',
  );
  if (!patched) throw new Error('no patch marker: the projection did not run as local activities');
  const names = taskQueueNames(taskQueue);
  for (const event of events) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (!scheduled) continue;
    const type = scheduled.activityType?.name ?? '';
    const domain = domains[type];
    if (!domain || scheduled.taskQueue?.name !== names[domain])
      throw new Error(`${type} ran on ${scheduled.taskQueue?.name}, not its domain's queue`);
  }
}

/** What each local activity of a run's history ran, and the ids of the patches it recorded. */
async function markersOf(
  { client }: ScenarioContext,
  workflowId: string,
): Promise<{ localActivities: string[]; patches: string[] }> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const details = (name: string) =>
    (history.events ?? [])
      .filter((event) => event.markerRecordedEventAttributes?.markerName === name)
      .map((event) =>
        Buffer.from(
          event.markerRecordedEventAttributes?.details?.['data']?.payloads?.[0]?.data ??
            event.markerRecordedEventAttributes?.details?.['patch-data']?.payloads?.[0]?.data ??
            [],
        ).toString('utf8'),
      );
  return { localActivities: details('core_local_activity'), patches: details('core_patch') };
}

/**
 * Checks a run registered its job with its first stage: its first projection write registers
 * the job (recordJobStart, or recordJobUpdates from job-projection-writes-behind on) in place of
 * registerJob and a first update (patch job-projection-first-state-with-registration).
 */
async function checkFirstStateWithRegistration(
  context: ScenarioContext,
  workflowId: string,
): Promise<void> {
  const { localActivities } = await markersOf(context, workflowId);
  if (!/recordJobStart|recordJobUpdates/.test(localActivities[0] ?? ''))
    throw new Error(`the first local activity did not register the job: ${localActivities[0]}`);
  if (localActivities.some((marker) => marker.includes('registerJob')))
    throw new Error('registerJob ran as well');
}

/**
 * Checks a run wrote its projection behind the workflow (patch job-projection-writes-behind):
 * the patch's marker, and every projection write a recordJobUpdates.
 */
async function checkWritesBehind(context: ScenarioContext, workflowId: string): Promise<void> {
  const { localActivities, patches } = await markersOf(context, workflowId);
  if (!patches.some((patch) => patch.includes('job-projection-writes-behind')))
    throw new Error(`no job-projection-writes-behind marker among ${JSON.stringify(patches)}`);
  const writes = localActivities.filter((marker) => /"(recordJob|registerJob)/.test(marker));
  const others = writes.filter((marker) => !marker.includes('"recordJobUpdates"'));
  if (writes.length === 0 || others.length > 0)
    throw new Error(`projection writes other than recordJobUpdates: ${JSON.stringify(others)}`);
}

/** A vlog submitted and run to completion: the path most scenarios record. */
async function completedVlog(context: ScenarioContext): Promise<string> {
  const id = await startVlog(context);
  await waitForVlog(context.api, id, (view) => view.status === 'completed', 'vlog completed');
  return id;
}

/** An AI job submitted and run to completion. */
async function completedAiJob(context: ScenarioContext): Promise<string> {
  const id = await startAiJob(context);
  await waitForAiJob(context.api, id, (view) => view.status === 'completed', 'completed');
  return id;
}

export const scenarios: Scenario[] = [
  {
    workflowType: 'vlogJob',
    name: 'success',
    run: completedVlog,
  },
  {
    workflowType: 'vlogJob',
    name: 'queue-map',
    run: completedVlog,
    check: (context, workflowId) =>
      checkQueueMap(context, workflowId, {
        analyzeMedia: 'analysis',
        startVideoGeneration: 'video-generation',
        checkVideoGeneration: 'video-generation',
        transferVideo: 'transfer',
        describeVideo: 'storage',
      }),
  },
  {
    workflowType: 'vlogJob',
    name: 'first-state',
    run: completedVlog,
    check: checkFirstStateWithRegistration,
  },
  {
    workflowType: 'vlogJob',
    name: 'writes-behind',
    run: completedVlog,
    check: checkWritesBehind,
  },
  {
    workflowType: 'vlogJob',
    name: 'provider-turn',
    async run(context) {
      const { fakes, api } = context;
      // Ten vlogs hold every Veo lease (VEO_MAX_CONCURRENT_OPERATIONS) for a few seconds; the
      // recorded one waits its turn in a local activity and is woken as the first one ends.
      fakes.google.scenario.pollsBeforeDone = 15;
      const holders: string[] = [];
      for (let i = 0; i < 10; i += 1) holders.push(await startVlog(context));
      await eventually(
        () => Promise.resolve(fakes.google.runningOperations()),
        (running) => running === holders.length,
        { what: 'every Veo lease held', timeoutMs: 60_000 },
      );
      const id = await startVlog(context);
      for (const vlog of [...holders, id])
        await waitForVlog(api, vlog, (view) => view.status === 'completed', 'vlog completed');
      return id;
    },
    async check({ client }, workflowId) {
      const history = await client.workflow.getHandle(workflowId).fetchHistory();
      const woken = (history.events ?? []).some(
        (event) => event.workflowExecutionSignaledEventAttributes?.signalName === 'providerTurn',
      );
      if (!woken) throw new Error('the vlog was not woken by a providerTurn signal');
    },
  },
  {
    workflowType: 'vlogJob',
    name: 'cancel-analysis',
    async run(context) {
      const id = await startWithHungModelCall(context, startVlog);
      await cancelVlog(context.api, id);
      return id;
    },
  },
  {
    workflowType: 'vlogJob',
    name: 'cancel-generation',
    async run(context) {
      context.fakes.google.scenario.pollsBeforeDone = 1_000_000;
      const id = await startVlog(context);
      await waitForVlog(
        context.api,
        id,
        (view) => view.status === 'generating' && view.progress > 25,
        'vlog generating',
      );
      await cancelVlog(context.api, id);
      return id;
    },
  },
  {
    workflowType: 'vlogJob',
    name: 'cancel-generation-start',
    async run(context) {
      const { fakes } = context;
      // The submission is never answered: the cancel lands while startVideoGeneration runs.
      fakes.google.scenario.holdStarts = true;
      const submitted = fakes.google.calls.predictLongRunning;
      const id = await startVlog(context);
      await eventually(
        () => Promise.resolve(fakes.google.calls.predictLongRunning - submitted),
        (count) => count === 1,
        { what: 'the generation submitted' },
      );
      await cancelVlog(context.api, id);
      return id;
    },
    // Since the patch, the cleanup waits for the cancelled submission to end.
    async check({ client }, workflowId) {
      const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
      const scheduled = (name: string) =>
        events.find(
          (event) => event.activityTaskScheduledEventAttributes?.activityType?.name === name,
        )?.eventId;
      const start = String(scheduled('startVideoGeneration'));
      const ended = events.find(
        (event) => String(event.activityTaskCanceledEventAttributes?.scheduledEventId) === start,
      );
      if (!ended) throw new Error('the submission did not end cancelled');
      if (!(Number(scheduled('cleanupVlog')) > Number(ended.eventId)))
        throw new Error('the cleanup did not wait for the cancelled submission');
    },
  },
  {
    workflowType: 'vlogJob',
    name: 'cancel-transfer',
    async run(context) {
      const { fakes, api, client } = context;
      // Two parts, each held back: the cancel lands while the first is on its way, and the
      // transfer hears of it with the heartbeat that follows.
      fakes.google.scenario.videoBytes = 8 * 1024 * 1024 + 1_024;
      fakes.partDelayMs = 1_500;
      const id = await startVlog(context);
      await eventually(
        async () => (await client.workflow.getHandle(id).describe()).raw.pendingActivities ?? [],
        (pending) =>
          pending.some(
            (activity) =>
              activity.activityType?.name === 'transferVideo' &&
              activity.state === PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
          ),
        { what: 'the transfer running', timeoutMs: 60_000, intervalMs: 20 },
      );
      await cancelVlog(api, id);
      return id;
    },
    async check({ client }, workflowId) {
      const history = await client.workflow.getHandle(workflowId).fetchHistory();
      const canceled = history.events?.some(
        (event) =>
          event.eventType ===
          proto.temporal.api.enums.v1.EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
      );
      if (!canceled) throw new Error('the transfer finished before the cancel reached it');
    },
  },
  {
    workflowType: 'vlogJob',
    name: 'retry',
    async run(context) {
      const { fakes, api } = context;
      fakes.google.scenario.generationOutcomes = [
        { kind: 'error', message: 'the renderer fell over' },
      ];
      const id = await startVlog(context);
      await retryAfterFailure(api, `/api/vlogs/${id}`);
      return id;
    },
  },
  {
    workflowType: 'vlogJob',
    name: 'deadline',
    // The attempt runs out while Veo renders; no retry comes within the window, so it closes.
    env: { VLOG_DEADLINE_MS: '1500', JOB_RETRY_WINDOW_MS: '500' },
    async run(context) {
      context.fakes.google.scenario.pollsBeforeDone = 1_000_000;
      const id = await startVlog(context);
      await waitForVlog(
        context.api,
        id,
        (view) => view.error?.code === 'VLOG_DEADLINE_EXCEEDED',
        'vlog past its deadline',
      );
      return id;
    },
  },
  {
    workflowType: 'aiGenerationJob',
    name: 'success',
    run: completedAiJob,
  },
  {
    workflowType: 'aiGenerationJob',
    name: 'queue-map',
    run: completedAiJob,
    check: (context, workflowId) =>
      checkQueueMap(context, workflowId, { generateAiItems: 'text-generation' }),
  },
  {
    workflowType: 'aiGenerationJob',
    name: 'first-state',
    run: completedAiJob,
    check: checkFirstStateWithRegistration,
  },
  {
    workflowType: 'aiGenerationJob',
    name: 'writes-behind',
    run: completedAiJob,
    check: checkWritesBehind,
  },
  {
    workflowType: 'aiGenerationJob',
    name: 'cancel',
    async run(context) {
      const { api } = context;
      const id = await startWithHungModelCall(context, startAiJob);
      await call(api, 'POST', `/api/ai/jobs/${id}/cancel`, { reason: 'recorded cancel' });
      await waitForAiJob(api, id, (view) => view.status === 'cancelled', 'cancelled');
      return id;
    },
  },
  {
    workflowType: 'aiGenerationJob',
    name: 'retry',
    async run(context) {
      const { fakes, api } = context;
      fakes.google.scenario.analysisAnswers = [{ kind: 'blocked' }];
      const id = await startAiJob(context);
      await retryAfterFailure(api, `/api/ai/jobs/${id}`);
      return id;
    },
  },
  {
    workflowType: 'aiGenerationJob',
    name: 'timeout',
    // The model never answers; no retry comes within the window, so the workflow closes.
    env: { AI_JOB_TIMEOUT_MS: '1500', JOB_RETRY_WINDOW_MS: '500' },
    async run(context) {
      context.fakes.google.scenario.analysisAnswers = [{ kind: 'hang' }];
      const id = await startAiJob(context);
      await waitForAiJob(context.api, id, (view) => view.status === 'timeout', 'timed out');
      return id;
    },
  },
  {
    workflowType: 'probeJob',
    name: 'success',
    async run({ api }) {
      const { id } = await call(api, 'POST', '/api/probes', { steps: 3, stepDelayMs: 10 });
      await waitForJob(api, `/api/jobs/${id}`, (view) => view.status === 'completed', 'completed');
      return id;
    },
  },
  {
    workflowType: 'probeJob',
    name: 'cancel-in-temporal',
    // An operator's cancel in the Web UI or the CLI: Temporal cancels the workflow.
    async run({ api, client }) {
      const { id } = await startLongProbe(api);
      await client.workflow.getHandle(id).cancel();
      await waitForJob(api, `/api/jobs/${id}`, (view) => view.status === 'cancelled', 'cancelled');
      return id;
    },
  },
  {
    workflowType: 'probeJob',
    name: 'cancel',
    async run({ api }) {
      const { id } = await startLongProbe(api);
      await call(api, 'POST', `/api/probes/${id}/cancel`, { reason: 'recorded cancel' });
      await waitForJob(api, `/api/jobs/${id}`, (view) => view.status === 'cancelled', 'cancelled');
      return id;
    },
  },
  {
    workflowType: 'recordDeferredCharge',
    name: 'database-stalled',
    // As in the database outage of test/faults/dependency-outages.test.ts: a vlog's analysis is
    // answered while the path to the database is stalled (here its one connection is held), so
    // its charge cannot be written in time and is handed to a recordDeferredCharge workflow,
    // which writes it once the database is back.
    async run(context) {
      const { fakes, api, client, db } = context;
      let answer = () => undefined as void;
      const answered = new Promise<void>((resolve) => (answer = resolve));
      fakes.google.scenario.analysisAnswers = [
        { kind: 'held', until: answered, then: { kind: 'valid' } },
      ];
      const asked = fakes.google.modelCalls();
      const vlogId = await startVlog(context);
      await eventually(
        () => Promise.resolve(fakes.google.modelCalls() - asked),
        (count) => count === 1,
        { what: 'the analysis asked' },
      );
      let restore = () => undefined as void;
      const restored = new Promise<void>((resolve) => (restore = resolve));
      const stalled = db.connection().execute(() => restored);
      let workflowId: string;
      try {
        answer();
        workflowId = await eventually(
          async () => {
            const found: string[] = [];
            const query = `WorkflowType = 'recordDeferredCharge'`;
            for await (const run of client.workflow.list({ query })) {
              if (run.workflowId.startsWith(`ledger-charge:${vlogId}:analysis:`))
                found.push(run.workflowId);
            }
            return found[0] ?? '';
          },
          (id) => id !== '',
          { what: 'the charge handed to a recordDeferredCharge workflow', timeoutMs: 60_000 },
        );
      } finally {
        restore();
        await stalled;
      }
      await waitForVlog(api, vlogId, (view) => view.status === 'completed', 'vlog completed');
      return workflowId;
    },
    async check({ client, db }, workflowId) {
      const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
      const written = events.some((event) => event.activityTaskCompletedEventAttributes);
      if (!written) throw new Error('the deferred charge was not written by its workflow');
      const key = workflowId.slice('ledger-charge:'.length);
      const rows = await db
        .selectFrom('cost_ledger')
        .select('idempotency_key')
        .where('idempotency_key', '=', key)
        .execute();
      if (rows.length !== 1) throw new Error(`${key}: ${rows.length} ledger rows, not one`);
    },
  },
  {
    workflowType: 'inspectUploadedMedia',
    name: 'inspect',
    // The API has a worker read each upload before it starts the vlog; the run's id names the
    // upload's batch, which only the API knows, so it is found by its type and start.
    async run(context) {
      const since = new Date(Date.now() - 1_000).toISOString();
      const id = await startVlog(context);
      await waitForVlog(context.api, id, (view) => view.status === 'completed', 'vlog completed');
      const query = `WorkflowType = 'inspectUploadedMedia' AND StartTime > '${since}'`;
      const inspections = await eventually(
        async () => {
          const ids: string[] = [];
          for await (const run of context.client.workflow.list({ query })) ids.push(run.workflowId);
          return ids;
        },
        (ids) => ids.length > 0,
        { what: "the upload's inspection", timeoutMs: 30_000 },
      );
      if (inspections.length !== 1) throw new Error(`inspections: ${inspections.join(', ')}`);
      return inspections[0]!;
    },
  },
  {
    workflowType: 'sweepExpiredMedia',
    name: 'sweep',
    // What a scheduled run does: batches of one, so the run takes a full batch and a short one,
    // of ended vlogs and then of uploads an API left (one here).
    async run(context) {
      const id = await startVlog(context);
      await waitForVlog(context.api, id, (view) => view.status === 'completed', 'vlog completed');
      await recordUploadBatch(context.db, { batchId: randomUUID(), ownerId: 'recorder' });
      const handle = await context.client.workflow.start<typeof sweepExpiredMedia>(
        'sweepExpiredMedia',
        {
          taskQueue: context.taskQueue,
          workflowId: `media-sweep-recorded-${id}`,
          args: [{ retentionMs: 0, retryWindowMs: 0, batchSize: 1, orphanUploadAgeMs: 0 }],
        },
      );
      await handle.result();
      return handle.workflowId;
    },
    async check({ client }, workflowId) {
      const result = await client.workflow.getHandle<typeof sweepExpiredMedia>(workflowId).result();
      if (result.jobs < 1 || result.orphanUploads !== 1) {
        throw new Error(`the sweep did not delete one of each: ${JSON.stringify(result)}`);
      }
    },
  },
  {
    workflowType: 'reconcileJobProjections',
    name: 'terminated',
    // What a scheduled run does after an operator terminated a job's workflow: batches of one,
    // so the run takes a full batch and a short one.
    async run(context) {
      const { api, client } = context;
      const { id } = await call(api, 'POST', '/api/probes', { steps: 100, stepDelayMs: 500 });
      await waitForJob(api, `/api/jobs/${id}`, (view) => view.progress > 0, 'probe under way');
      await client.workflow.getHandle(id).terminate('recorded termination');
      const handle = await client.workflow.start<typeof reconcileJobProjections>(
        'reconcileJobProjections',
        {
          taskQueue: context.taskQueue,
          workflowId: `job-reconcile-recorded-${id}`,
          args: [{ staleMs: 0, batchSize: 1 }],
        },
      );
      const result = await handle.result();
      if (result.ended < 1) throw new Error(`nothing ended: ${JSON.stringify(result)}`);
      await waitForJob(api, `/api/jobs/${id}`, (view) => view.status === 'failed', 'probe ended');
      return handle.workflowId;
    },
  },
  {
    workflowType: 'reconcileJobProjections',
    name: 'resumed',
    // A scheduled run that resumes where the one before it stopped, from the result the
    // schedule hands it: two probes in flight, one job a run, so the second run starts after
    // the job the first one checked.
    async run(context) {
      const { api, client } = context;
      const ids: string[] = [];
      for (const _ of [1, 2]) {
        const { id } = await call(api, 'POST', '/api/probes', { steps: 100, stepDelayMs: 500 });
        await waitForJob(api, `/api/jobs/${id}`, (view) => view.progress > 0, 'probe under way');
        ids.push(id);
      }
      const schedule = await client.schedule.create({
        scheduleId: `job-reconcile-recorded-${ids[0]}`,
        spec: { intervals: [{ every: '1h' }] },
        action: {
          type: 'startWorkflow',
          workflowType: 'reconcileJobProjections',
          taskQueue: context.taskQueue,
          args: [{ staleMs: 0, batchSize: 1, maxBatchesPerRun: 1 }],
        },
        policies: { overlap: ScheduleOverlapPolicy.SKIP },
      });
      try {
        const runs: JobReconcileResult[] = [];
        let workflowId = '';
        for (const _ of [1, 2]) {
          const run = await runScheduledOnce<JobReconcileResult>(client, schedule.scheduleId);
          workflowId = run.workflowId;
          runs.push(run.result);
        }
        const [first, second] = runs.map((result) => result.resumeAfterId);
        if (!first || !second || first === second || !ids.includes(first) || !ids.includes(second))
          throw new Error(`the second run did not resume after the first: ${JSON.stringify(runs)}`);
        return workflowId;
      } finally {
        await schedule.delete();
        // Probes have no cancel route: the workflow's own cancellation ends them.
        for (const id of ids) await client.workflow.getHandle(id).cancel();
      }
    },
  },
];
