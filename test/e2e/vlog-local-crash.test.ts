import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mintToken } from '../../src/auth.js';
import { findMediaTools, type MediaTools } from '../../src/media/tools.js';
import { abandonedRenderMs } from '../../src/providers/local-generator.js';
import { multipartBody, renderTestPhoto, renderTestVideo } from '../fixtures/media.js';
import { serviceEnv, testJwtSecret } from '../support/harness.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually } from '../support/eventually.js';
import { onFreePorts } from '../support/ports.js';
import {
  processesWorkingIn,
  startReadyService,
  type ServiceProcess,
} from '../support/processes.js';
import { testTemporal, uniqueTaskQueue } from '../support/temporal.js';
import { probeVideo } from '../support/video.js';

interface VlogView {
  id: string;
  status: string;
  error: { code: string; message: string } | null;
  videoUrl: string | null;
}

// The production shape with the local provider: the worker is killed (SIGKILL, no goodbye)
// while ffmpeg renders. ffmpeg must not outlive it, and the vlog must still complete.
describe('local renders survive a killed worker', () => {
  let tools: MediaTools;
  let database: TestDatabase;
  let env: Record<string, string>;
  let baseUrl: string;
  let token: string;
  const temporal = testTemporal();
  const dataDir = path.join(os.tmpdir(), `vlogflow-local-crash-${randomUUID()}`);
  const renderWorkDir = path.join(dataDir, 'render-work');
  const running: ServiceProcess[] = [];

  before(async () => {
    const found = await findMediaTools();
    assert.ok(found);
    tools = found;
    database = await createTestDatabase();
    const port = await onFreePorts(1, async ([port]) => {
      env = {
        ...serviceEnv({
          dataDir,
          databaseUrl: database.url,
          taskQueue: uniqueTaskQueue('vlog-local-crash'),
        }),
        API_PORT: String(port),
        PROVIDER_RETRY_INITIAL_MS: '200',
      };
      await start('api');
      return port!;
    });
    baseUrl = `http://127.0.0.1:${port}`;
    token = await mintToken(testJwtSecret, 'crash-tester');
  });
  after(async () => {
    for (const service of running) await service.stop('SIGKILL');
    await temporal.close();
    await database.drop();
  });

  async function start(entry: 'api' | 'worker'): Promise<ServiceProcess> {
    return startReadyService(entry, env, running);
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

  it('kills ffmpeg with the worker, renders again on the retry, and completes', async () => {
    const worker = await start('worker');
    const form = multipartBody({ title: 'Crash test', durationSeconds: '8' }, [
      {
        field: 'media',
        filename: 'a.jpg',
        contentType: 'image/jpeg',
        bytes: await renderTestPhoto(tools.ffmpeg, 'jpg'),
      },
      {
        field: 'media',
        filename: 'b.mp4',
        contentType: 'video/mp4',
        bytes: await renderTestVideo(tools.ffmpeg, 8, { size: '1280x720', audio: true }),
      },
    ]);
    const response = await fetch(`${baseUrl}/api/vlogs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, ...form.headers },
      body: form.payload,
    });
    assert.equal(response.status, 202, await response.clone().text());
    const vlog = (await response.json()) as VlogView;

    const workDir = path.join(renderWorkDir, `renders-${vlog.id}-attempt-1`);
    const rendering = await eventually(
      () => processesWorkingIn(workDir),
      (found) => found.some((process) => process.command.endsWith('ffmpeg')),
      { what: 'ffmpeg rendering', timeoutMs: 60_000, intervalMs: 20 },
    );
    worker.child.kill('SIGKILL');
    await worker.exited;
    // The render has seconds left to run, yet at once nothing of it runs any more: neither
    // ffmpeg nor its supervisor. (An orphaned ffmpeg would still be rendering here.)
    await eventually(
      () => processesWorkingIn(workDir),
      (found) => found.length === 0,
      {
        what: `ffmpeg gone (it was ${JSON.stringify(rendering)})`,
        timeoutMs: 2_000,
        intervalMs: 50,
      },
    );

    // The folder of a render killed long ago whose job never came back to this machine: the
    // worker starting now removes it.
    const abandoned = path.join(renderWorkDir, 'renders-vlog-gone-attempt-1');
    const longAgo = new Date(Date.now() - 2 * abandonedRenderMs);
    await mkdir(abandoned);
    await writeFile(path.join(abandoned, 'input-00'), 'bytes');
    await utimes(path.join(abandoned, 'input-00'), longAgo, longAgo);
    await utimes(abandoned, longAgo, longAgo);

    await start('worker');
    const done = await waitFor(
      vlog.id,
      (view) => ['completed', 'failed', 'cancelled'].includes(view.status),
      'vlog finished',
    );
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    const video = await probeVideo(
      tools.ffprobe,
      Buffer.from(await (await fetch(done.videoUrl!)).arrayBuffer()),
    );
    assert.deepEqual(video.video, { codec: 'h264', width: 1280, height: 720 });
    assert.ok(Math.abs(video.durationSeconds - 8) < 0.05, `${video.durationSeconds} s`);

    // The render that finished was the activity's retry, not the killed attempt.
    const history = await temporal.client.workflow.getHandle(vlog.id).fetchHistory();
    const events = history.events ?? [];
    const scheduled = events.find(
      (event) =>
        event.activityTaskScheduledEventAttributes?.activityType?.name === 'startVideoGeneration',
    );
    const started = events.find(
      (event) =>
        String(event.activityTaskStartedEventAttributes?.scheduledEventId) ===
        String(scheduled?.eventId),
    );
    assert.ok((started?.activityTaskStartedEventAttributes?.attempt ?? 0) >= 2);
    // No ffmpeg left anywhere under the render folder; the killed render's files are gone, and
    // so is the abandoned one's.
    assert.deepEqual(await processesWorkingIn(renderWorkDir), []);
    assert.deepEqual(await readdir(renderWorkDir), []);
  });
});
