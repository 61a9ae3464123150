// The provider-quota governor's request rate against the fake Google server: however many vlogs
// submit their generations and look at them at once, Veo never sees more requests in a second
// than QUEUE_VIDEO_GENERATION_RATE_PER_SECOND (counted as `mostVeoRequestsInASecond` says), and
// still sees about that many while they wait.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { loadConfig, queueCapacities } from '../../src/config.js';
import { startWorker, type RunningWorker } from '../../src/worker/worker.js';
import { jpegBytes, multipartBody } from '../fixtures/media.js';
import { CloudFakes } from '../support/cloud-fakes.js';
import { testEnv } from '../support/env.js';
import { startHarness, type Harness } from '../support/harness.js';
import { testLogger } from '../support/logs.js';

interface VlogView {
  id: string;
  status: string;
  error: { code: string; message: string } | null;
}

const ratePerSecond = 1;
const vlogs = 4;

describe('Veo requests under QUEUE_VIDEO_GENERATION_RATE_PER_SECOND', () => {
  let fakes: CloudFakes;
  let h: Harness;
  let worker: RunningWorker;

  before(async () => {
    fakes = await CloudFakes.start();
    Object.assign(fakes.env, {
      QUEUE_VIDEO_GENERATION_RATE_PER_SECOND: String(ratePerSecond),
      // Every vlog submits at once: only the rate holds them back.
      VEO_MAX_CONCURRENT_OPERATIONS: String(vlogs),
      USER_MAX_JOBS_IN_FLIGHT: String(vlogs),
      VLOG_MAX_UPLOADS_IN_PROGRESS_PER_USER: String(vlogs),
    });
    h = await startHarness({ env: fakes.env });
    // The worker a worker process would run from this environment: its queues' rates included.
    worker = await startWorker(
      {
        endpoint: { address: testEnv.temporalAddress },
        namespace: testEnv.temporalNamespace,
        taskQueue: h.taskQueue,
        capacity: queueCapacities(loadConfig(fakes.env)),
        shutdownGraceMs: 2_000,
      },
      await fakes.activityDependencies(h.db),
      testLogger(),
    );
  });
  after(async () => {
    await worker?.stop();
    await h?.stop();
    await fakes?.stop();
  });

  it('never lets more Veo requests through in a second than the rate, and keeps to it while work waits', async () => {
    // Each generation is looked at three times, every VIDEO_POLL_INTERVAL_MS (200 ms): the vlogs
    // want far more requests a second than the rate, so they queue from the first submission on.
    fakes.google.scenario.pollsBeforeDone = 3;
    const user = h.user(`veo-rate-${randomUUID()}`);
    const ids = await Promise.all(
      Array.from({ length: vlogs }, async (_, index) => {
        const view = await user.startJob<VlogView>(
          'vlog',
          multipartBody({ title: `Rate ${index}` }, [
            { field: 'media', filename: 'a.jpg', contentType: 'image/jpeg', bytes: jpegBytes() },
          ]),
        );
        return view.id;
      }),
    );
    for (const id of ids) {
      const done = await user.awaitJob<VlogView>(
        'vlog',
        id,
        (view) => ['completed', 'failed', 'cancelled'].includes(view.status),
        { what: `vlog ${id} finished`, timeoutMs: 120_000, intervalMs: 200 },
      );
      assert.equal(done.status, 'completed', JSON.stringify(done.error));
    }

    const times = [...fakes.google.veoRequestTimes].sort((a, b) => a - b);
    assert.ok(times.length >= vlogs * 4, `Veo saw ${times.length} requests`);
    const { most, windowMs } = fakes.google.mostVeoRequestsInASecond(ratePerSecond);
    const gaps = times.slice(1).map((time, index) => time - times[index]!);
    assert.ok(
      most <= ratePerSecond,
      `${most} Veo requests within ${windowMs} ms; gaps ${gaps.join(', ')} ms`,
    );
    // The vlogs want more than the rate from the first request to the last: no less gets through.
    const achieved = ((times.length - 1) * 1_000) / (times.at(-1)! - times[0]!);
    assert.ok(
      achieved >= 0.75 * ratePerSecond,
      `Veo saw ${achieved.toFixed(2)} requests a second; gaps ${gaps.join(', ')} ms`,
    );
  });
});
