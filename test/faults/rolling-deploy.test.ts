import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { submissionDrainMs } from '../../src/kinds/vlog/activities/generate.js';
import { transferPartBytes } from '../../src/kinds/vlog/activities/transfer.js';
import { vlogVideoKey } from '../../src/jobs/storage-keys.js';
import { eventually } from '../support/eventually.js';
import { FaultStack, type FaultJob } from '../support/fault-stack.js';
import type { ServiceProcess } from '../support/processes.js';
import type { GateRequest } from '../support/request-gate.js';

const graceMs = 3_000;
/** What a drained worker may take beyond its grace time to cancel, report and close. */
const exitMarginMs = 5_000;

// A rolling deploy as docs/operations.md tells it: worker B starts on the same queues, then the
// old worker A gets SIGTERM while it runs jobs. Veo is slow, so every vlog's generation is in
// flight. A holds model calls and Veo calls at the provider's door: the ones let through during
// the grace time finish on A, the ones still held when it ends are cancelled and run again on B.
describe('fault: rolling worker deploy', () => {
  let stack: FaultStack;
  let oldWorker: ServiceProcess;

  before(async () => {
    stack = await FaultStack.start({
      name: 'deploy',
      env: { WORKER_SHUTDOWN_GRACE_MS: String(graceMs) },
    });
    await stack.start('api');
    oldWorker = await stack.start('worker');
  });
  after(() => stack.stop());

  it('SIGTERM drains the old worker while the new one takes over: every job completes, one Veo submission per vlog, exit 0 within the grace and a Veo submission’s drain', async () => {
    const google = stack.fakes.google;
    // Veo answers "not done" until the old worker is gone: generations stay in flight.
    google.scenario.generationMs = 10 * 60_000;
    const holds = {
      checkFinishing: stack.holdGenerationChecks('check let through', ['check-finishing']),
      checkCut: stack.holdGenerationChecks('check cut short', ['check-cut']),
      submitCut: stack.holdGoogleCalls(
        'submission cut short',
        ['submit-cut'],
        'predictLongRunning',
      ),
      aiFinishing: stack.holdGoogleCalls(
        'model call let through',
        ['ai-finishing'],
        'streamGenerateContent',
      ),
      aiCut: stack.holdGoogleCalls('model call cut short', ['ai-cut'], 'streamGenerateContent'),
    };
    const vlogs = {
      checkFinishing: [
        await stack.submitVlog('check-finishing'),
        await stack.submitVlog('check-finishing'),
      ],
      checkCut: [await stack.submitVlog('check-cut'), await stack.submitVlog('check-cut')],
      submitCut: await stack.submitVlog('submit-cut'),
    };
    const ai = {
      finishing: [await stack.submitAi('ai-finishing'), await stack.submitAi('ai-finishing')],
      cut: await stack.submitAi('ai-cut'),
    };
    await stack.waitHeld(holds.checkFinishing, 2);
    await stack.waitHeld(holds.checkCut, 2);
    await stack.waitHeld(holds.submitCut, 1);
    await stack.waitHeld(holds.aiFinishing, 2);
    await stack.waitHeld(holds.aiCut, 1);

    const newWorker = await stack.start('worker');
    const signalledAt = Date.now();
    const oldExit = stack.terminate(oldWorker);
    await oldWorker.waitForLine(/worker draining/, 10_000);
    holds.checkFinishing.release();
    holds.aiFinishing.release();

    const exitCode = await oldExit;
    const tookMs = Date.now() - signalledAt;
    assert.equal(exitCode, 0, oldWorker.output.slice(-30).join('\n'));
    // The Veo submission held at the door may have reached Veo: it gets submissionDrainMs more.
    assert.ok(
      tookMs < graceMs + submissionDrainMs + exitMarginMs,
      `the old worker took ${tookMs} ms to exit`,
    );
    google.scenario.generationMs = 0;
    stack.googleGate.releaseAll();
    const recoveryMs = await stack.waitAllFinal();

    // The drain's logs name what it waited for and what the grace time cut short.
    const logged = (message: RegExp) =>
      oldWorker.logs().find((line) => message.test(String(line['msg'])));
    const jobsOf = (line: Record<string, unknown> | undefined) =>
      new Set(((line?.['activities'] ?? []) as { workflowId: string }[]).map((a) => a.workflowId));
    const waitedFor = jobsOf(logged(/^worker draining/));
    const cutShort = jobsOf(logged(/^grace time over/));
    const finishing = [...vlogs.checkFinishing, ...ai.finishing];
    const cut = [...vlogs.checkCut, vlogs.submitCut, ai.cut];
    for (const job of [...finishing, ...cut]) assert.ok(waitedFor.has(job.id), job.marker);
    for (const job of finishing) assert.ok(!cutShort.has(job.id), job.marker);
    for (const job of cut) assert.ok(cutShort.has(job.id), job.marker);
    assert.ok(logged(/^stopped$/));

    // Let through in the grace time, the old worker's activities finished there; cut short by
    // it, they ran again and finished on the new worker.
    const oldIdentity = `${oldWorker.child.pid}@${hostname()}`;
    const newIdentity = `${newWorker.child.pid}@${hostname()}`;
    const activityOf = (job: FaultJob) =>
      job.kind === 'ai'
        ? 'generateAiItems'
        : job === vlogs.submitCut
          ? 'startVideoGeneration'
          : 'checkVideoGeneration';
    for (const job of finishing) {
      const by = await stack.completedBy(job, activityOf(job));
      assert.equal(by[0], oldIdentity, `${job.marker}: ${JSON.stringify(by)}`);
    }
    for (const job of cut) {
      const by = await stack.completedBy(job, activityOf(job));
      assert.equal(by[0], newIdentity, `${job.marker}: ${JSON.stringify(by)}`);
      assert.ok((await stack.activityAttempts(job)).get(activityOf(job))! >= 2, job.marker);
    }
    // Exactly one Veo submission per vlog (finish checks it is never more than one).
    for (const job of Object.values(vlogs).flat()) {
      assert.equal(stack.paidCalls(job, 'predictLongRunning'), 1, job.marker);
    }
    assert.equal(newWorker.child.exitCode, null, 'the new worker runs on');
    oldWorker = newWorker;
    await stack.finish({
      scenario: 'Rolling worker deploy',
      fault: `old worker SIGTERMed (grace ${graceMs} ms) with a new one polling`,
      faultMs: tookMs,
      recoveryMs,
      notes: [`old worker exited 0 after ${tookMs} ms`],
    });
  });

  it('a transfer the grace time cut short goes on from its parts on the new worker', async () => {
    const parsed = (request: GateRequest) => new URL(request.url, 'http://gate');
    stack.fakes.google.scenario.videoBytesFor = ({ prompt }) =>
      prompt.includes(stack.markerPrefix('transfer-cut'))
        ? 2 * transferPartBytes + 1024
        : undefined;
    const job = await stack.submitVlog('transfer-cut');
    const delivered = `/media/${vlogVideoKey(job.id)}`;
    const isPart = (request: GateRequest) =>
      request.method === 'PUT' &&
      parsed(request).pathname === delivered &&
      parsed(request).searchParams.has('partNumber');
    const lastPart = stack.s3Gate.hold(
      'transfer cut short',
      (request) => isPart(request) && parsed(request).searchParams.get('partNumber') === '3',
    );
    await stack.waitHeld(lastPart, 1);

    const newWorker = await stack.start('worker');
    const signalledAt = Date.now();
    assert.equal(await stack.terminate(oldWorker), 0, oldWorker.output.slice(-30).join('\n'));
    const tookMs = Date.now() - signalledAt;
    lastPart.release();
    const recoveryMs = await stack.waitAllFinal([job]);

    const resumed = newWorker
      .logs()
      .find((line) => line['msg'] === 'resuming transfer' && line['jobId'] === job.id);
    assert.equal(resumed?.['resumedParts'], 2, 'the new worker started the transfer over');
    const partsSent = stack.s3Gate.forwarded.filter(isPart).length;
    assert.equal(partsSent, 3, 'each part of the transferred video was sent once');
    oldWorker = newWorker;
    await stack.finish(
      {
        scenario: 'Rolling worker deploy mid-transfer',
        fault: `old worker SIGTERMed (grace ${graceMs} ms) while a vlog's transfer waited on its last part`,
        faultMs: tookMs,
        recoveryMs,
        notes: [`the new worker went on from ${String(resumed?.['resumedParts'])} of 3 parts`],
      },
      [job],
    );
  });

  it('a Veo submission Veo accepted and not yet answered when the grace time ends is waited for: one generation', async () => {
    const google = stack.fakes.google;
    // Veo takes the request at once and answers past the grace time, within the exit deadline.
    google.scenario.startAnswerDelayMs = graceMs + 5_000;
    const job = await stack.submitVlog('submit-accepted');
    const submissions = () => stack.paidCalls(job, 'predictLongRunning');
    await eventually(
      async () => submissions(),
      (count) => count === 1,
      {
        what: `Veo to accept the generation of ${job.id}`,
        timeoutMs: 60_000,
        intervalMs: 20,
      },
    );

    const signalledAt = Date.now();
    const exitCode = await stack.terminate(oldWorker);
    const tookMs = Date.now() - signalledAt;
    google.scenario.startAnswerDelayMs = 0;
    assert.equal(exitCode, 0, oldWorker.output.slice(-30).join('\n'));
    oldWorker = await stack.start('worker');
    const recoveryMs = await stack.waitAllFinal([job]);
    assert.equal(submissions(), 1, 'the generation was submitted again');

    await stack.finish(
      {
        scenario: 'Rolling worker deploy mid-submission',
        fault: `old worker SIGTERMed (grace ${graceMs} ms) after Veo accepted a generation it had not answered yet`,
        faultMs: tookMs,
        recoveryMs,
        notes: [`the old worker waited for Veo's answer and exited 0 after ${tookMs} ms`],
      },
      [job],
    );
  });
});
