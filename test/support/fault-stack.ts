// What every fault scenario runs: the real API and worker processes against PostgreSQL (through
// a TCP proxy that can be cut), Temporal, fake Google and the storage emulators (behind request
// gates that can hold a chosen call), plus a ledger of the jobs submitted and how they ended.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import proto from '@temporalio/proto';
import { mintToken } from '../../src/auth.js';
import { createTemporalAccess, type TemporalAccess } from '../../src/temporal-client.js';
import { multipartBody, pngBytes } from '../fixtures/media.js';
import { testJwtSecret } from './harness.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { testEnv } from './env.js';
import { eventually } from './eventually.js';
import { recordFaultRow, type FaultRow } from './fault-report.js';
import { freePort, onFreePorts } from './ports.js';
import { startReadyService, type ServiceProcess } from './processes.js';
import { RequestGate, type GateRequest, type Hold } from './request-gate.js';
import { TcpProxy } from './tcp-proxy.js';
import { uniqueTaskQueue } from './temporal.js';
import type { ModelMethod, PaidCall } from '../fakes/fake-google.js';
import { CloudFakes } from './cloud-fakes.js';

/** A job's view as the API serves it (the fields the fault suite reads). */
export interface JobView {
  id: string;
  status: string;
  progress: number;
  error: { code: string; message: string } | null;
  /** Vlogs. */
  videoUrl?: string | null;
  /** AI jobs. */
  result?: { items: unknown[] } | null;
}

export type Expected = { status: 'completed' } | { status: 'failed'; code: string };

export interface FaultJob {
  id: string;
  kind: 'vlog' | 'ai';
  /** Text unique to this job in every prompt it causes: how gates and fakes tell its calls apart. */
  marker: string;
  expected: Expected;
}

/** An activity still running or waiting to retry, as Temporal describes it. */
export interface PendingActivity {
  type: string;
  /** PendingActivityState: 1 scheduled, 2 started, 3 cancel requested. */
  state: number;
  attempt: number;
  workerIdentity: string;
  heartbeat: unknown;
}

const terminal = ['completed', 'failed', 'cancelled', 'timeout'];
export const isTerminal = (view: JobView | null) => view !== null && terminal.includes(view.status);

export interface FaultStackOptions {
  /** Used in task queue names and job markers. */
  name: string;
  /** Temporal frontend; default the suite's dev server. */
  temporalAddress?: string;
  temporalNamespace?: string;
  /** Environment for both processes on top of the suite's defaults. */
  env?: Record<string, string>;
}

export class FaultStack {
  fakes!: CloudFakes;
  /** In front of fake Google (Gemini and Vertex). */
  googleGate!: RequestGate;
  /** In front of the S3 emulator (media storage, "R2"). */
  s3Gate!: RequestGate;
  /** Between both processes and PostgreSQL. */
  database!: TcpProxy;
  testDatabase!: TestDatabase;
  temporal!: TemporalAccess;
  env: Record<string, string> = {};
  baseUrl = '';
  token = '';
  readonly ownerId = `fault-${randomUUID().slice(0, 8)}`;
  readonly jobs: FaultJob[] = [];
  /** Every process started, so teardown kills each one even if a test failed half-way. */
  readonly running: ServiceProcess[] = [];
  private apiStarted = false;
  private readonly killed = new Set<ServiceProcess>();

  private constructor(private readonly options: FaultStackOptions) {}

  static async start(options: FaultStackOptions): Promise<FaultStack> {
    const stack = new FaultStack(options);
    await stack.setUp();
    return stack;
  }

  get client(): Client {
    return this.temporal.client;
  }

  private async setUp(): Promise<void> {
    this.fakes = await CloudFakes.start();
    this.googleGate = await RequestGate.start(this.fakes.google.url);
    this.s3Gate = await RequestGate.start(this.fakes.s3.endpoint);
    this.testDatabase = await createTestDatabase();
    const postgres = new URL(this.testDatabase.url);
    this.database = await TcpProxy.start(postgres.hostname, Number(postgres.port || 5432));
    const port = await freePort();
    const temporalAddress = this.options.temporalAddress ?? testEnv.temporalAddress;
    const temporalNamespace = this.options.temporalNamespace ?? testEnv.temporalNamespace;
    this.temporal = createTemporalAccess({ address: temporalAddress }, temporalNamespace);
    this.env = {
      ...this.fakes.env,
      GEMINI_BASE_URL: this.googleGate.url,
      VERTEX_BASE_URL: this.googleGate.url,
      S3_ENDPOINT: this.s3Gate.url,
      DATABASE_URL: this.database.proxiedUrl(this.testDatabase.url),
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_NAMESPACE: temporalNamespace,
      TEMPORAL_TASK_QUEUE: uniqueTaskQueue(`faults-${this.options.name}`),
      API_PORT: String(port),
      WORKER_SHUTDOWN_GRACE_MS: '1000',
      // Pollers hammer the API on purpose; the limits are not what is under test.
      USER_RATE_LIMIT_REQUESTS: '1000000',
      USER_READ_RATE_LIMIT_REQUESTS: '1000000',
      USER_MAX_JOBS_IN_FLIGHT: '100',
      // A job that fails as expected closes its workflow soon, so Temporal's view is final too.
      JOB_RETRY_WINDOW_MS: '1000',
      // A lost AI call is noticed (and retried) within seconds instead of a minute.
      AI_JOB_HEARTBEAT_TIMEOUT_MS: '5000',
      // A Veo submission a fault left unanswered is looked for in the bucket for seconds, not
      // the minutes a real generation may take, before it is sent again.
      VEO_UNANSWERED_SUBMISSION_WAIT_MS: '3000',
      ...this.options.env,
    };
    this.baseUrl = `http://127.0.0.1:${port}`;
    this.token = await mintToken(testJwtSecret, this.ownerId);
  }

  async stop(): Promise<void> {
    for (const service of this.running) {
      // A process that died without being killed is a finding: show how it ended.
      if (!this.killed.has(service) && service.child.exitCode !== null) {
        console.log(
          `${service.child.spawnargs.at(-1)} exited by itself (${service.child.exitCode}):\n${service.output.slice(-40).join('\n')}`,
        );
      }
      await service.stop('SIGKILL');
    }
    this.googleGate.releaseAll();
    this.s3Gate.releaseAll();
    await this.temporal.close();
    await this.database.stop();
    await this.testDatabase.drop();
    await this.googleGate.stop();
    await this.s3Gate.stop();
    await this.fakes.stop();
  }

  /**
   * Starts the API or a worker process and waits until it says it is ready. The stack's first
   * API starts on a fresh port if another process took the one found free before it bound it;
   * later ones start again on that port, as a restarted API does.
   */
  async start(entry: 'api' | 'worker', env: Record<string, string> = {}): Promise<ServiceProcess> {
    if (entry === 'worker' || this.apiStarted)
      return startReadyService(entry, { ...this.env, ...env }, this.running);
    const api = await onFreePorts(1, async ([port]) => {
      this.env.API_PORT = String(port);
      this.baseUrl = `http://127.0.0.1:${port}`;
      const attempt: ServiceProcess[] = [];
      try {
        return await startReadyService('api', { ...this.env, ...env }, attempt);
      } catch (error) {
        for (const service of attempt) await service.stop('SIGKILL');
        throw error;
      }
    });
    this.running.push(api);
    this.apiStarted = true;
    return api;
  }

  /** SIGKILLs a process (no shutdown, no goodbye) and waits until it is gone. */
  async kill(service: ServiceProcess): Promise<void> {
    this.killed.add(service);
    service.child.kill('SIGKILL');
    await service.exited;
  }

  /** Sends SIGTERM (how a deploy stops a process) and returns its exit code. */
  terminate(service: ServiceProcess): Promise<number | null> {
    this.killed.add(service);
    return service.stop('SIGTERM');
  }

  /** A marker unique to one job. */
  marker(label: string): string {
    return `${this.markerPrefix(label)}${randomUUID().slice(0, 6)}`;
  }

  async submitVlog(label: string, expected: Expected = { status: 'completed' }): Promise<FaultJob> {
    const marker = this.marker(label);
    const form = multipartBody({ title: marker, durationSeconds: '4' }, [
      { field: 'media', filename: 'a.png', contentType: 'image/png', bytes: pngBytes() },
    ]);
    const response = await fetch(`${this.baseUrl}/api/vlogs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.token}`, ...form.headers },
      body: form.payload,
    });
    assert.equal(response.status, 202, await response.clone().text());
    const job: FaultJob = {
      id: ((await response.json()) as JobView).id,
      kind: 'vlog',
      marker,
      expected,
    };
    this.jobs.push(job);
    return job;
  }

  async submitAi(label: string, expected: Expected = { status: 'completed' }): Promise<FaultJob> {
    const marker = this.marker(label);
    const response = await fetch(`${this.baseUrl}/api/ai/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        type: 'SUBGOAL_GENERATION',
        input: { goal: `Run a marathon (${marker})`, maxItems: 3 },
      }),
    });
    assert.equal(response.status, 202, await response.clone().text());
    const job: FaultJob = {
      id: ((await response.json()) as JobView).id,
      kind: 'ai',
      marker,
      expected,
    };
    this.jobs.push(job);
    return job;
  }

  /** How many calls of `method` Google billed for the job (a Veo submission, a model call). */
  paidCalls(job: FaultJob, method: PaidCall['method']): number {
    return this.fakes.google
      .paidCallsMentioning(job.marker)
      .filter((call) => call.method === method).length;
  }

  viewUrl(job: FaultJob): string {
    return `${this.baseUrl}/api/${job.kind === 'vlog' ? 'vlogs' : 'ai/jobs'}/${job.id}`;
  }

  /** The API's view of a job, or null while the API does not answer with one. */
  async view(job: FaultJob): Promise<JobView | null> {
    try {
      const response = await fetch(this.viewUrl(job), {
        headers: { authorization: `Bearer ${this.token}` },
      });
      return response.ok ? ((await response.json()) as JobView) : null;
    } catch {
      return null;
    }
  }

  async readiness(): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${this.baseUrl}/readyz`);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  /**
   * What every marker of jobs submitted with `label` starts with, known before they are
   * submitted; no label's prefix contains another's ("poll~" is not in "poll-vlog~").
   */
  markerPrefix(label: string): string {
    return `${this.options.name}-${label}~`;
  }

  /**
   * Holds the Google calls of one of `methods` (an analysis asks with generateContent, an AI
   * generation with streamGenerateContent) of the jobs submitted with one of `labels`.
   */
  holdGoogleCalls(
    name: string,
    labels: string[],
    ...methods: (ModelMethod | 'predictLongRunning')[]
  ): Hold {
    return this.googleGate.hold(
      name,
      (request) =>
        methods.some((method) =>
          new URL(request.url, this.googleGate.url).pathname.endsWith(`:${method}`),
        ) && labels.some((label) => request.body.includes(this.markerPrefix(label))),
    );
  }

  /** Holds the Veo status checks of the generations of jobs submitted with one of `labels`. */
  holdGenerationChecks(name: string, labels: string[]): Hold {
    return this.googleGate.hold(name, (request) => {
      if (!request.url.endsWith(':fetchPredictOperation')) return false;
      const { operationName } = JSON.parse(request.body.toString('utf8')) as {
        operationName: string;
      };
      const prompt = this.fakes.google.operations.get(operationName)?.prompt ?? '';
      return labels.some((label) => prompt.includes(this.markerPrefix(label)));
    });
  }

  /** Waits until a hold has stopped `count` requests whose clients are still there. */
  async waitHeld(hold: { name: string; waiting(): GateRequest[] }, count: number): Promise<void> {
    await eventually(
      async () => hold.waiting().length,
      (held) => held >= count,
      { what: `${count} requests held by "${hold.name}"`, timeoutMs: 60_000, intervalMs: 50 },
    );
  }

  /** Waits until no held request has a live client any more (after a kill closed their sockets). */
  async waitHeldClientsGone(): Promise<void> {
    await eventually(
      async () => [...this.googleGate.waiting(), ...this.s3Gate.waiting()].length,
      (held) => held === 0,
      { what: 'the killed worker’s held requests to close', timeoutMs: 10_000, intervalMs: 20 },
    );
  }

  /** The activities Temporal says a job's workflow has running or waiting to retry. */
  async pendingActivities(job: FaultJob): Promise<PendingActivity[]> {
    const description = await this.client.workflow.getHandle(job.id).describe();
    return (description.raw.pendingActivities ?? []).map((activity) => ({
      type: activity.activityType?.name ?? '',
      state: Number(activity.state ?? 0),
      attempt: activity.attempt ?? 0,
      workerIdentity: activity.lastWorkerIdentity ?? '',
      heartbeat: activity.heartbeatDetails?.payloads?.[0]
        ? defaultPayloadConverter.fromPayload(activity.heartbeatDetails.payloads[0])
        : undefined,
    }));
  }

  /** Waits until Temporal reports a running activity of `type` for the job that `accept` likes. */
  async waitPendingActivity(
    job: FaultJob,
    type: string,
    accept: (activity: PendingActivity) => boolean = () => true,
    timeoutMs = 30_000,
  ): Promise<PendingActivity> {
    const found = await eventually(
      async () =>
        (await this.pendingActivities(job)).find(
          (activity) => activity.type === type && accept(activity),
        ),
      (activity) => activity !== undefined,
      { what: `${type} pending for ${job.id}`, timeoutMs, intervalMs: 100 },
    );
    return found!;
  }

  /**
   * Waits until the job's `activity` has completed and the workflow task after it, the one that
   * runs the projection as a local activity, has started and not finished.
   */
  async waitProjecting(job: FaultJob, activity: string, timeoutMs = 30_000): Promise<void> {
    const { EventType } = proto.temporal.api.enums.v1;
    await eventually(
      async () => {
        const history = await this.client.workflow.getHandle(job.id).fetchHistory();
        const events = history.events ?? [];
        const scheduled = new Set(
          events
            .filter(
              (event) =>
                event.activityTaskScheduledEventAttributes?.activityType?.name === activity,
            )
            .map((event) => String(event.eventId)),
        );
        const completed = events.findIndex((event) =>
          scheduled.has(String(event.activityTaskCompletedEventAttributes?.scheduledEventId)),
        );
        if (completed < 0) return false;
        const after = events.slice(completed + 1).map((event) => event.eventType);
        const started = after.lastIndexOf(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED);
        return (
          started >= 0 &&
          !after.slice(started).includes(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
        );
      },
      (projecting) => projecting,
      {
        what: `the projection after ${activity} under way for ${job.id}`,
        timeoutMs,
        intervalMs: 100,
      },
    );
  }

  /** Whether a workflow task of the job timed out (its worker was lost while running it). */
  async workflowTaskTimedOut(job: FaultJob): Promise<boolean> {
    const { EventType } = proto.temporal.api.enums.v1;
    const history = await this.client.workflow.getHandle(job.id).fetchHistory();
    return (history.events ?? []).some(
      (event) => event.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
    );
  }

  /** The highest attempt each activity type reached in a job's history. */
  async activityAttempts(job: FaultJob): Promise<Map<string, number>> {
    const history = await this.client.workflow.getHandle(job.id).fetchHistory();
    const typeOf = new Map<string, string>();
    const attempts = new Map<string, number>();
    for (const event of history.events ?? []) {
      const scheduled = event.activityTaskScheduledEventAttributes;
      if (scheduled) typeOf.set(String(event.eventId), scheduled.activityType?.name ?? '');
      const started = event.activityTaskStartedEventAttributes;
      if (started) {
        const type = typeOf.get(String(started.scheduledEventId)) ?? '';
        attempts.set(type, Math.max(attempts.get(type) ?? 0, started.attempt ?? 0));
      }
    }
    return attempts;
  }

  /** The identities of the workers that completed a job's activities of `type`, in order. */
  async completedBy(job: FaultJob, type: string): Promise<string[]> {
    const history = await this.client.workflow.getHandle(job.id).fetchHistory();
    const scheduled = new Set<string>();
    const identities: string[] = [];
    for (const event of history.events ?? []) {
      if (event.activityTaskScheduledEventAttributes?.activityType?.name === type)
        scheduled.add(String(event.eventId));
      const completed = event.activityTaskCompletedEventAttributes;
      if (completed && scheduled.has(String(completed.scheduledEventId)))
        identities.push(completed.identity ?? '');
    }
    return identities;
  }

  /** How many of a job's activity attempts failed and were retried, over all its activities. */
  async retriedAttempts(job: FaultJob): Promise<number> {
    const history = await this.client.workflow.getHandle(job.id).fetchHistory();
    return (history.events ?? []).reduce(
      (sum, event) =>
        sum + Math.max(0, (event.activityTaskStartedEventAttributes?.attempt ?? 1) - 1),
      0,
    );
  }

  /**
   * Waits until the API shows every job final; returns how long that took. Views a job no
   * longer needs once it is final.
   */
  async waitAllFinal(jobs: FaultJob[] = this.jobs, timeoutMs = 120_000): Promise<number> {
    const started = Date.now();
    const final = new Set<string>();
    try {
      await eventually(
        async () => {
          for (const job of jobs) {
            if (!final.has(job.id) && isTerminal(await this.view(job))) final.add(job.id);
          }
          return final.size;
        },
        (count) => count === jobs.length,
        { what: `all ${jobs.length} jobs final`, timeoutMs, intervalMs: 100 },
      );
    } catch (error) {
      const stuck = await Promise.all(
        jobs
          .filter((job) => !final.has(job.id))
          .map(async (job) => ({
            marker: job.marker,
            view: await this.view(job),
            pending: await this.pendingActivities(job).catch(String),
          })),
      );
      throw new Error(`jobs not final: ${JSON.stringify(stuck, null, 2)}`, { cause: error });
    }
    return Date.now() - started;
  }

  /**
   * Judges how the jobs ended — in the API's view, in Temporal, in the jobs table and at the
   * provider — records the scenario's report row, then fails the test on anything lost,
   * duplicated or paid for twice.
   */
  async finish(
    scenario: Pick<FaultRow, 'scenario' | 'fault' | 'faultMs' | 'recoveryMs' | 'notes'>,
    jobs: FaultJob[] = this.jobs,
  ): Promise<FaultRow> {
    const problems: string[] = [];
    let completed = 0;
    let failedAsExpected = 0;
    let lost = 0;
    let duplicateGenerations = 0;
    for (const job of jobs) {
      const view = await this.view(job);
      const workflow = await eventually(
        async () => (await this.client.workflow.getHandle(job.id).describe()).status.name,
        (status) => status !== 'RUNNING',
        { what: `workflow ${job.id} closed`, timeoutMs: 30_000, intervalMs: 200 },
      ).catch(() => 'RUNNING');
      const rows = await this.testDatabase.db
        .selectFrom('jobs')
        .select('id')
        .where('id', '=', job.id)
        .execute();
      const expectedWorkflow = job.expected.status === 'completed' ? 'COMPLETED' : 'FAILED';
      const apiRight =
        view !== null &&
        view.status === job.expected.status &&
        (job.expected.status === 'completed'
          ? view.progress === 100 &&
            (job.kind === 'vlog' ? Boolean(view.videoUrl) : (view.result?.items.length ?? 0) > 0)
          : view.error?.code === job.expected.code);
      if (!apiRight || workflow !== expectedWorkflow || rows.length !== 1) {
        lost += 1;
        problems.push(
          `${job.id} (${job.marker}): API ${JSON.stringify(view)}, Temporal ${workflow}, ${rows.length} rows; expected ${JSON.stringify(job.expected)}`,
        );
      } else if (job.expected.status === 'completed') completed += 1;
      else failedAsExpected += 1;

      for (const method of [
        'generateContent',
        'streamGenerateContent',
        'predictLongRunning',
      ] as const) {
        const count = this.paidCalls(job, method);
        if (count > 1) {
          duplicateGenerations += count - 1;
          problems.push(`${job.id} (${job.marker}): ${count} paid ${method} calls`);
        }
      }
    }
    const owned = await this.testDatabase.db
      .selectFrom('jobs')
      .select('id')
      .where('owner_id', '=', this.ownerId)
      .execute();
    const submittedIds = new Set(this.jobs.map((job) => job.id));
    const strangers = owned.filter((row) => !submittedIds.has(row.id));
    if (strangers.length > 0)
      problems.push(`job rows nobody submitted: ${JSON.stringify(strangers)}`);

    const workflows = await eventually(
      async () => (await this.client.workflow.count(`UserId = "${this.ownerId}"`)).count,
      (count) => count === this.jobs.length,
      { what: 'one workflow per submitted job', timeoutMs: 10_000, intervalMs: 200 },
    ).catch(async () => (await this.client.workflow.count(`UserId = "${this.ownerId}"`)).count);
    if (workflows !== this.jobs.length)
      problems.push(`the owner has ${workflows} workflows for ${this.jobs.length} jobs submitted`);

    const row: FaultRow = {
      ...scenario,
      submitted: jobs.length,
      completed,
      failedAsExpected,
      lost,
      duplicateGenerations,
    };
    await recordFaultRow(row);
    assert.deepEqual(problems, [], 'jobs lost, duplicated or paid for twice');
    assert.equal(lost, 0);
    assert.equal(duplicateGenerations, 0);
    return row;
  }
}
