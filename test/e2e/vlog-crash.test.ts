import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mintToken } from '../../src/auth.js';
import { mp4Bytes, multipartBody, pngBytes } from '../fixtures/media.js';
import { testJwtSecret } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { testEnv } from '../support/env.js';
import { eventually } from '../support/eventually.js';
import { freePort } from '../support/ports.js';
import { startReadyService, type ServiceProcess } from '../support/processes.js';
import { uniqueTaskQueue } from '../support/temporal.js';
import { VlogHarness } from '../support/vlog-harness.js';

interface VlogView {
  id: string;
  status: string;
  progress: number;
  error: { code: string; message: string } | null;
  videoUrl: string | null;
}

// The production shape — API and worker as their own processes — with the worker killed
// (SIGKILL: no shutdown, no goodbye) in the middle of a vlog, and the API restarted.
describe('vlogs survive killed processes', () => {
  let harness: VlogHarness;
  let database: TestDatabase;
  let env: Record<string, string>;
  let baseUrl: string;
  let token: string;
  const running: ServiceProcess[] = [];
  /** The worker process polling now; each test leaves one running. */
  let worker: ServiceProcess;

  before(async () => {
    harness = await VlogHarness.start();
    database = await createTestDatabase();
    const port = await freePort();
    env = {
      ...harness.env,
      DATABASE_URL: database.url,
      TEMPORAL_ADDRESS: testEnv.temporalAddress,
      TEMPORAL_NAMESPACE: testEnv.temporalNamespace,
      TEMPORAL_TASK_QUEUE: uniqueTaskQueue('vlog-crash'),
      API_PORT: String(port),
      WORKER_SHUTDOWN_GRACE_MS: '1000',
    };
    baseUrl = `http://127.0.0.1:${port}`;
    token = await mintToken(testJwtSecret, 'crash-tester');
  });
  after(async () => {
    for (const service of running) await service.stop('SIGKILL');
    await database.drop();
    await harness.stop();
  });

  async function start(entry: 'api' | 'worker'): Promise<ServiceProcess> {
    return startReadyService(entry, env, running);
  }

  async function createVlog(clipBytes: number): Promise<VlogView> {
    const form = multipartBody({ title: 'Crash test' }, [
      { field: 'media', filename: 'a.png', contentType: 'image/png', bytes: pngBytes() },
      { field: 'media', filename: 'b.mp4', contentType: 'video/mp4', bytes: mp4Bytes(clipBytes) },
    ]);
    const response = await fetch(`${baseUrl}/api/vlogs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, ...form.headers },
      body: form.payload,
    });
    assert.equal(response.status, 202, await response.clone().text());
    return (await response.json()) as VlogView;
  }

  function waitFor(id: string, done: (view: VlogView) => boolean, what: string) {
    return eventually(
      async () => {
        const response = await fetch(`${baseUrl}/api/vlogs/${id}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        return (await response.json()) as VlogView;
      },
      done,
      { what, timeoutMs: 120_000, intervalMs: 100 },
    );
  }

  it('a worker killed during generation and an API restarted mid-job: one generation, vlog completes', async () => {
    const api = await start('api');
    worker = await start('worker');
    harness.google.scenario.pollsBeforeDone = 1_000_000;
    const generations = harness.google.calls.predictLongRunning;
    const vlog = await createVlog(64 * 1024);
    await waitFor(
      vlog.id,
      (view) => view.status === 'generating' && view.progress > 25,
      'vlog generating',
    );

    worker.child.kill('SIGKILL');
    await worker.exited;
    api.child.kill('SIGKILL');
    await api.exited;
    await start('api');
    // The job is still there and still generating while no worker runs.
    assert.equal((await waitFor(vlog.id, () => true, 'vlog readable')).status, 'generating');

    harness.google.scenario.pollsBeforeDone = 1;
    worker = await start('worker');
    const done = await waitFor(
      vlog.id,
      (view) => ['completed', 'failed', 'cancelled'].includes(view.status),
      'vlog finished',
    );
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(
      harness.google.calls.predictLongRunning - generations,
      1,
      'a second generation was paid for',
    );
  });

  it('a worker killed during the transfer: the retry resumes from the parts already in R2', async () => {
    const parts = 12;
    harness.google.scenario.videoBytes = parts * 8 * 1024 * 1024;
    const generations = harness.google.calls.predictLongRunning;
    const vlog = await createVlog(64 * 1024);
    const key = `vlogs/${vlog.id}/video.mp4`;
    await eventually(
      () => Promise.resolve(harness.s3.uploadedParts(key)),
      (count) => count >= 3,
      { what: 'three parts in R2', timeoutMs: 60_000, intervalMs: 10 },
    );
    worker.child.kill('SIGKILL');
    await worker.exited;
    const sentBeforeKill = harness.s3.uploadedParts(key);
    assert.ok(
      sentBeforeKill < parts,
      `the transfer finished before the kill (${sentBeforeKill} parts)`,
    );

    worker = await start('worker');
    const restarted = worker;
    const done = await waitFor(
      vlog.id,
      (view) => ['completed', 'failed', 'cancelled'].includes(view.status),
      'vlog finished',
    );
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    const video = await fetch(done.videoUrl!);
    assert.equal((await video.arrayBuffer()).byteLength, parts * 8 * 1024 * 1024);

    const sent = harness.s3.uploadedParts(key);
    assert.ok(sent < 2 * parts, `${sent} parts sent for a ${parts}-part video`);
    const resumed = restarted
      .logs()
      .find((line) => line['msg'] === 'resuming transfer' && line['jobId'] === vlog.id);
    assert.ok(resumed, 'the retried transfer did not resume');
    assert.ok((resumed['resumedParts'] as number) >= sentBeforeKill - 1);
    assert.equal(harness.google.calls.predictLongRunning - generations, 1);
  });
});
