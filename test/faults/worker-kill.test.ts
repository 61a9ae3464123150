import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { transferPartBytes } from '../../src/kinds/vlog/activities/transfer.js';
import { readJobEvents } from '../../src/db/job-events.js';
import { vlogVideoKey } from '../../src/jobs/storage-keys.js';
import { eventually } from '../support/eventually.js';
import { FaultStack, type FaultJob } from '../support/fault-stack.js';
import type { ServiceProcess } from '../support/processes.js';
import type { GateRequest } from '../support/request-gate.js';

/** How long a killed worker stays down before it is started again. */
const pauseMs = 2_000;
/** A job whose worker dies runs again on another within this long (issue 14's target). */
const resumeWithinMs = 15_000;
const startedState = 2; // PENDING_ACTIVITY_STATE_STARTED

const mediaPath = (job: FaultJob) => `/media/${vlogVideoKey(job.id)}`;
const parsed = (request: GateRequest) => new URL(request.url, 'http://gate');

// Workers SIGKILLed (no shutdown, no goodbye) while every activity of both pipelines is under
// way: each job is held at its provider or storage call, so the kill lands inside the activity
// the job is there for, every time.
describe('fault: worker SIGKILL', () => {
  let stack: FaultStack;
  let worker: ServiceProcess;

  before(async () => {
    stack = await FaultStack.start({ name: 'kill' });
    await stack.start('api');
    worker = await stack.start('worker');
  });
  after(() => stack.stop());

  it('in every activity of both pipelines, restarted after a pause: every job ends right, nothing paid twice', async () => {
    const google = stack.fakes.google;
    const videoBytes = 2 * transferPartBytes + 1024;
    google.scenario.videoBytesFor = ({ prompt }) =>
      prompt.includes(stack.markerPrefix('transfer')) ? videoBytes : undefined;
    // The AI job to be caught in its projection gets its whole answer, written to the event
    // log as it streams, and the answer's end only once the database path is stalled: the
    // model call then ends without the database, and the projection after it waits on it.
    let finishProjected = () => undefined as void;
    const projectedFinish = new Promise<void>((resolve) => (finishProjected = resolve));
    google.scenario.answerFor = (prompt) =>
      prompt.includes(stack.markerPrefix('refused'))
        ? { kind: 'blocked' }
        : prompt.includes(stack.markerPrefix('project'))
          ? { kind: 'unfinished', until: projectedFinish }
          : undefined;

    const holds = {
      analyze: stack.holdGoogleCalls('analyzeMedia', ['analyze'], 'generateContent'),
      start: stack.holdGoogleCalls('startVideoGeneration', ['start'], 'predictLongRunning'),
      unrecorded: stack.holdGoogleCalls('recordOperation', ['unrecorded'], 'predictLongRunning'),
      check: stack.holdGenerationChecks('checkVideoGeneration', ['check']),
      generate: stack.holdGoogleCalls(
        'generateAiItems',
        ['generate', 'refused'],
        'streamGenerateContent',
      ),
    };
    const vlogs = {
      analyze: await stack.submitVlog('analyze'),
      start: await stack.submitVlog('start'),
      unrecorded: await stack.submitVlog('unrecorded'),
      check: await stack.submitVlog('check'),
      transfer: await stack.submitVlog('transfer'),
      describe: await stack.submitVlog('describe'),
    };
    const transferHold = stack.s3Gate.hold(
      'transferVideo',
      (request) =>
        request.method === 'PUT' &&
        parsed(request).pathname === mediaPath(vlogs.transfer) &&
        parsed(request).searchParams.get('partNumber') === '3',
    );
    const describeHold = stack.s3Gate.hold(
      'describeVideo',
      (request) =>
        request.method === 'GET' &&
        parsed(request).pathname === mediaPath(vlogs.describe) &&
        !parsed(request).searchParams.has('uploadId'),
    );
    const ai = {
      generate: [await stack.submitAi('generate'), await stack.submitAi('generate')],
      refused: await stack.submitAi('refused', { status: 'failed', code: 'SAFETY_BLOCKED' }),
      project: await stack.submitAi('project'),
    };

    await stack.waitHeld(holds.analyze, 1);
    await stack.waitHeld(holds.start, 1);
    await stack.waitHeld(holds.unrecorded, 1);
    await stack.waitHeld(holds.check, 1);
    await stack.waitHeld(transferHold, 1);
    await stack.waitHeld(describeHold, 1);
    await stack.waitHeld(holds.generate, 3);
    await eventually(
      async () => {
        const log = await readJobEvents(
          stack.testDatabase.db,
          [{ jobId: ai.project.id, afterSeq: -1 }],
          1000,
        );
        return log.map(({ event }) => event.output?.text ?? '').join('');
      },
      (written) => {
        try {
          return JSON.parse(written) !== undefined;
        } catch {
          return false;
        }
      },
      { what: `${ai.project.id}: its whole answer in the event log`, timeoutMs: 30_000 },
    );

    // Two more places, reached with the database path stalled: Veo has accepted a generation
    // whose operation is not yet written down, and a finished AI job is being projected.
    stack.database.stall();
    holds.unrecorded.release();
    finishProjected();
    const unrecorded = await stack.waitPendingActivity(
      vlogs.unrecorded,
      'startVideoGeneration',
      (activity) =>
        typeof (activity.heartbeat as { operationName?: unknown } | undefined)?.operationName ===
        'string',
    );
    // The projection runs as a local activity inside the workflow task that follows the model
    // call: the kill lands while that workflow task is under way.
    await stack.waitProjecting(ai.project, 'generateAiItems');

    const killedAt = Date.now();
    await stack.kill(worker);
    await stack.waitHeldClientsGone();
    stack.googleGate.releaseAll();
    stack.s3Gate.releaseAll();
    stack.database.restore();
    await delay(pauseMs);
    worker = await stack.start('worker');
    const restartedAt = Date.now();
    const recoveryMs = await stack.waitAllFinal();

    // Each kill landed inside the activity it was meant for: that activity ran again.
    const killedIn: [FaultJob, string][] = [
      [vlogs.analyze, 'analyzeMedia'],
      [vlogs.start, 'startVideoGeneration'],
      [vlogs.unrecorded, 'startVideoGeneration'],
      [vlogs.check, 'checkVideoGeneration'],
      [vlogs.transfer, 'transferVideo'],
      [vlogs.describe, 'describeVideo'],
      ...ai.generate.map((job): [FaultJob, string] => [job, 'generateAiItems']),
      [ai.refused, 'generateAiItems'],
    ];
    for (const [job, activity] of killedIn) {
      const attempts = await stack.activityAttempts(job);
      assert.ok(
        (attempts.get(activity) ?? 0) >= 2,
        `${job.marker}: ${activity} was not retried (${JSON.stringify([...attempts])})`,
      );
    }
    // The workflow task running the projection was lost with the worker and run again.
    assert.ok(
      await stack.workflowTaskTimedOut(ai.project),
      'the projection’s workflow task was not run again',
    );
    // The generation Veo accepted before the kill was re-attached to, not submitted again.
    const reattached = worker
      .logs()
      .find(
        (line) =>
          line['msg'] === 're-attaching to the submitted generation' &&
          line['jobId'] === vlogs.unrecorded.id,
      );
    assert.equal(
      reattached?.['operationName'],
      (unrecorded.heartbeat as { operationName: string }).operationName,
    );
    // The transfer went on from the two parts already uploaded.
    const resumed = worker
      .logs()
      .find((line) => line['msg'] === 'resuming transfer' && line['jobId'] === vlogs.transfer.id);
    assert.equal(resumed?.['resumedParts'], 2);
    const partsSent = stack.s3Gate.forwarded.filter(
      (request) =>
        request.method === 'PUT' &&
        parsed(request).pathname === mediaPath(vlogs.transfer) &&
        parsed(request).searchParams.has('partNumber'),
    ).length;
    assert.equal(partsSent, 3, 'each part of the transferred video was sent once');

    await stack.finish(
      {
        scenario: 'worker SIGKILL in every activity',
        fault: `one worker SIGKILLed while 6 vlogs and 4 AI jobs were inside their activities, restarted ${pauseMs / 1000} s later`,
        faultMs: restartedAt - killedAt,
        recoveryMs,
        notes: [
          `killed inside: ${killedIn.map(([job, activity]) => `${activity} (${job.marker})`).join(', ')}, and the projection (local activity) of ${ai.project.marker}`,
          'startVideoGeneration killed twice over: before Veo answered, and after Veo accepted but before the operation was stored (re-attached from the heartbeat)',
          `transfer resumed from ${String(resumed?.['resumedParts'])} of 3 parts; ${partsSent} part uploads in all`,
          'the longest waits are the heartbeat (10 s vlog steps, 5 s AI calls) and workflow task (10 s, the projection) timeouts that notice a lost worker',
        ],
      },
      [...Object.values(vlogs), ...ai.generate, ai.refused, ai.project],
    );
  });

  it('one of two workers on the same task queue, mid-job: the other finishes every job', async () => {
    const second = await stack.start('worker');
    const workers = [worker, second];
    const hold = stack.holdGoogleCalls(
      'modelCalls',
      ['duo'],
      'generateContent',
      'streamGenerateContent',
    );
    const jobs = [
      await stack.submitVlog('duo'),
      await stack.submitVlog('duo'),
      ...(await Promise.all(Array.from({ length: 5 }, () => stack.submitAi('duo')))),
    ];
    await stack.waitHeld(hold, jobs.length);

    const identityOf = (service: ServiceProcess) => `${service.child.pid}@`;
    const heldBy = new Map(workers.map((service) => [service, 0]));
    for (const job of jobs) {
      const running = await stack.waitPendingActivity(
        job,
        job.kind === 'vlog' ? 'analyzeMedia' : 'generateAiItems',
        (activity) => activity.state === startedState,
      );
      const holder = workers.find((service) =>
        running.workerIdentity.startsWith(identityOf(service)),
      );
      assert.ok(holder, `activity of ${job.id} on an unknown worker ${running.workerIdentity}`);
      heldBy.set(holder, heldBy.get(holder)! + 1);
    }
    const [victim, survivor] =
      heldBy.get(worker)! >= heldBy.get(second)! ? [worker, second] : [second, worker];
    const killedAt = Date.now();
    await stack.kill(victim);
    const survivorHeld = heldBy.get(survivor)!;
    await eventually(
      async () => hold.waiting().length,
      (held) => held === survivorHeld,
      { what: 'the killed worker’s held calls to close', timeoutMs: 10_000, intervalMs: 20 },
    );
    // Progress resumes within 15 s of the kill: every call the killed worker held is made again
    // by the survivor (and held again) before the deadline.
    await eventually(
      async () => hold.waiting().length,
      (held) => held === jobs.length,
      {
        what: 'the survivor to take up every call the killed worker held, within 15 s of the kill',
        timeoutMs: Math.max(0, killedAt + resumeWithinMs - Date.now()),
        intervalMs: 50,
      },
    );
    const resumedMs = Date.now() - killedAt;
    hold.release();
    worker = survivor;
    const recoveryMs = await stack.waitAllFinal(jobs);

    await stack.finish(
      {
        scenario: 'one of two workers SIGKILLed',
        fault: `two workers on one task queue; the one running ${heldBy.get(victim)} of ${jobs.length} model calls SIGKILLed and not restarted`,
        faultMs: 0,
        recoveryMs,
        notes: [
          `the killed worker held ${heldBy.get(victim)} calls, the survivor ${survivorHeld}; the survivor finished all ${jobs.length} jobs`,
          `recovery measured from the kill (${new Date(killedAt).toISOString()}); every lost call was running again on the survivor after ${resumedMs} ms`,
        ],
      },
      jobs,
    );
  });

  it('after the transfer joined its parts, before the generated video was deleted: the retry sends no part again', async () => {
    const videoBytes = 2 * transferPartBytes + 1024;
    stack.fakes.google.scenario.videoBytesFor = ({ prompt }) =>
      prompt.includes(stack.markerPrefix('joined')) ? videoBytes : undefined;
    const job = await stack.submitVlog('joined');
    // The transfer's first look at the delivered copy comes right after its parts were joined.
    const joined = stack.s3Gate.hold(
      'transferVideo joined',
      (request) => request.method === 'HEAD' && parsed(request).pathname === mediaPath(job),
    );
    await stack.waitHeld(joined, 1);
    await stack.waitPendingActivity(
      job,
      'transferVideo',
      (activity) =>
        typeof (activity.heartbeat as { uploadId?: unknown } | undefined)?.uploadId === 'string',
    );
    const killedAt = Date.now();
    await stack.kill(worker);
    await stack.waitHeldClientsGone();
    joined.release();
    worker = await stack.start('worker');
    const restartedAt = Date.now();
    const recoveryMs = await stack.waitAllFinal([job]);

    const attempts = await stack.activityAttempts(job);
    assert.ok((attempts.get('transferVideo') ?? 0) >= 2, 'the transfer was not run again');
    const partsSent = stack.s3Gate.forwarded.filter(
      (request) =>
        request.method === 'PUT' &&
        parsed(request).pathname === mediaPath(job) &&
        parsed(request).searchParams.has('partNumber'),
    ).length;
    assert.equal(partsSent, 3, 'each part of the transferred video was sent once');
    const generated = await stack.fakes.generatedKeys(`generated/${job.id}/`);
    assert.deepEqual(generated, [], 'the generated video was left in Cloud Storage');

    await stack.finish(
      {
        scenario: 'worker SIGKILL after the transfer joined its parts',
        fault:
          'one worker SIGKILLed after R2 joined the 3 parts of a vlog, before the generated video was deleted, restarted at once',
        faultMs: restartedAt - killedAt,
        recoveryMs,
        notes: [`${partsSent} part uploads in all: the retry found the delivered copy whole`],
      },
      [job],
    );
  });

  it('after Veo took a submission, before its answer came: the retry finds the video, one generation paid', async () => {
    const google = stack.fakes.google;
    // Veo takes the request at once, writes the video, and answers long after.
    google.scenario.startAnswerDelayMs = 120_000;
    const job = await stack.submitVlog('taken-unanswered');
    const submissions = () => stack.paidCalls(job, 'predictLongRunning');
    await eventually(
      async () => submissions(),
      (count) => count === 1,
      { what: `Veo to take the generation of ${job.id}`, timeoutMs: 60_000, intervalMs: 20 },
    );
    const killedAt = Date.now();
    await stack.kill(worker);
    // A second submission would be answered at once: only the fix keeps it from being sent.
    google.scenario.startAnswerDelayMs = 0;
    worker = await stack.start('worker');
    const restartedAt = Date.now();
    const recoveryMs = await stack.waitAllFinal([job]);
    assert.equal(submissions(), 1, 'the generation was submitted again');

    await stack.finish(
      {
        scenario: 'worker SIGKILL between Veo taking a submission and its answer',
        fault:
          'one worker SIGKILLed after Veo took a vlog’s submission and before it answered, restarted at once',
        faultMs: restartedAt - killedAt,
        recoveryMs,
        notes: ['the retry found the video in the output folder: one generation submitted'],
      },
      [job],
    );
  });

  it('right after a cancel was accepted: the vlog ends cancelled, its generation charged once', async () => {
    const check = stack.holdGenerationChecks('checkVideoGeneration', ['cancel-kill']);
    const job = await stack.submitVlog('cancel-kill');
    await stack.waitHeld(check, 1);
    const cancelled = await fetch(`${stack.viewUrl(job)}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'changed my mind' }),
    });
    assert.equal(cancelled.status, 202, await cancelled.clone().text());
    // The workflow took the cancel; its cleanup is under way on the worker killed now.
    await stack.kill(worker);
    await stack.waitHeldClientsGone();
    check.release();
    worker = await stack.start('worker');
    const ended = await eventually(
      () => stack.view(job),
      (view) =>
        view !== null && ['completed', 'failed', 'cancelled', 'timeout'].includes(view.status),
      { what: `${job.id} ended`, timeoutMs: 120_000, intervalMs: 100 },
    );
    assert.equal(ended?.status, 'cancelled');
    const workflow = await eventually(
      async () => (await stack.client.workflow.getHandle(job.id).describe()).status.name,
      (status) => status !== 'RUNNING',
      { what: `${job.id} closed`, timeoutMs: 30_000, intervalMs: 200 },
    );
    assert.notEqual(workflow, 'RUNNING');
    assert.equal(
      stack.paidCalls(job, 'predictLongRunning'),
      1,
      'the generation was submitted once',
    );
    const charges = await stack.testDatabase.db
      .selectFrom('cost_ledger')
      .select('idempotency_key')
      .where('job_id', '=', job.id)
      .where('kind', '=', 'video')
      .execute();
    assert.equal(charges.length, 1, `video charges: ${JSON.stringify(charges)}`);
  });
});
