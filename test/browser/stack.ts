// The service as a browser meets it, for the browser tests: the API (which serves the page at
// `/`) listening on a local port it can be restarted on, a worker that renders vlogs on the
// machine with ffmpeg (an ffmpeg a test can fail or hold back), and a fake OpenAI-compatible
// server that writes the AI plans. One stack serves a whole test file; tests that change it
// (fail or hold renders, restart the API) put it back before they end.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { mintToken } from '../../src/auth.js';
import { loadConfig, mediaProcessLimits } from '../../src/config.js';
import { findMediaTools } from '../../src/media/tools.js';
import { createProviders } from '../../src/providers/index.js';
import { createMediaStorage } from '../../src/storage/index.js';
import { renderTestPhoto, renderTestVideo } from '../fixtures/media.js';
import { controlledRenders, type ControlledRenders } from '../fakes/media-tools.js';
import { FakeOpenAi } from '../fakes/fake-openai.js';
import { startHarness, testJwtSecret, type Harness, type TestApi } from '../support/harness.js';
import { reservePort } from '../support/ports.js';
import { uniqueTaskQueue } from '../support/temporal.js';

/** A file as a browser's file picker hands it over. */
export interface PickedFile {
  name: string;
  mimeType: string;
  buffer: Buffer;
}

/** The largest file the stack's API takes: small, so a test can pick a file over it. */
export const maxFileBytes = 1_000_000;

export interface PageStack {
  /** Where the browser finds the API and its page: `http://127.0.0.1:<port>`. */
  baseUrl: string;
  harness: Harness;
  /** The API serving the page now (another one after `restartApi`). */
  api(): TestApi;
  openai: FakeOpenAi;
  renders: ControlledRenders;
  /** Real media to upload: a photo and a short clip with sound. */
  media: { photo: PickedFile; clip: PickedFile };
  /**
   * A token of `userId`, as the identity provider (or `npm start`'s banner) hands one out;
   * `expiresIn` is jose's time span (default `12h`; `1h ago` makes one already expired).
   */
  token(userId: string, options?: { expiresIn?: string }): Promise<string>;
  /**
   * Stops the API (its progress streams end, as a stopping process ends them) and starts
   * another on the same port, over the same database and Temporal; `env` is laid over the
   * stack's own settings for the new one (the next restart without it puts them back).
   */
  restartApi(env?: Record<string, string>): Promise<void>;
  stop(): Promise<void>;
}

export async function startPageStack(): Promise<PageStack> {
  // Held until the API listens: the harness takes seconds to start, and the port is in its URL.
  const reserved = await reservePort();
  const { port } = reserved;
  const baseUrl = `http://127.0.0.1:${port}`;
  const dataDir = path.join(os.tmpdir(), `vlogflow-browser-${randomUUID()}`);
  const openai = new FakeOpenAi();
  await openai.start();
  const taskQueue = uniqueTaskQueue('browser');
  const env = {
    DATA_DIR: dataDir,
    AUTH_JWT_SECRET: testJwtSecret,
    TEMPORAL_TASK_QUEUE: taskQueue,
    // Media links the API signs must be ones the browser can follow.
    API_PUBLIC_URL: baseUrl,
    OPENAI_BASE_URL: openai.baseUrl,
    OPENAI_MODEL: 'fake-planner',
    EVENT_STREAM_POLL_MS: '100',
    VLOG_MAX_FILE_BYTES: String(maxFileBytes),
  };
  const config = loadConfig(env);
  const real = await findMediaTools(mediaProcessLimits(config));
  assert.ok(real, 'ffmpeg ships with the npm dependencies');
  const controlDir = path.join(dataDir, 'ffmpeg-control');
  await mkdir(controlDir, { recursive: true });
  const renders = await controlledRenders(real, controlDir);

  let harness: Harness;
  try {
    harness = await startHarness({
      taskQueue,
      env,
      worker: async (db) => {
        const mediaStorage = createMediaStorage(config, testJwtSecret);
        return {
          db,
          mediaStorage,
          mediaTools: renders.tools,
          providers: createProviders(config, { mediaStorage, mediaTools: renders.tools }),
        };
      },
    });
  } catch (error) {
    await openai.stop();
    await reserved.release();
    throw error;
  }
  let api = harness.api;
  await reserved.release();
  await api.app.listen({ host: '127.0.0.1', port });

  const [photo, clip] = await Promise.all([
    renderTestPhoto(real.ffmpeg, 'jpg'),
    renderTestVideo(real.ffmpeg, 3, { audio: true }),
  ]);

  return {
    baseUrl,
    harness,
    api: () => api,
    openai,
    renders,
    media: {
      photo: { name: 'sunrise.jpg', mimeType: 'image/jpeg', buffer: photo },
      clip: { name: 'waves.mp4', mimeType: 'video/mp4', buffer: clip },
    },
    token: (userId, options) => mintToken(testJwtSecret, userId, options),
    async restartApi(changed = {}) {
      await api.app.close();
      api = await harness.startApi({ env: { ...env, ...changed } });
      await api.app.listen({ host: '127.0.0.1', port });
    },
    async stop() {
      await renders.releaseRenders();
      await harness.stop();
      await openai.stop();
    },
  };
}
