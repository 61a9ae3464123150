// `npm run bench -- upload`: how fast POST /api/vlogs answers 202 for small uploads (÷ the same
// bytes posted to a node:http server that only drains them), and how much memory
// the API holds while a large clip streams through it (÷ the clip's size). Runs the real API
// in this process on embedded defaults (PGlite, local storage, an in-memory dev server) with no
// worker: it measures the accept path only.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildApp } from '../../../src/api/app.js';
import { mintToken } from '../../../src/auth.js';
import { loadConfig } from '../../../src/config.js';
import { openDatabase } from '../../../src/db/database.js';
import { createLogger } from '../../../src/logger.js';
import { createMediaStorage } from '../../../src/storage/index.js';
import { createTemporalAccess } from '../../../src/temporal-client.js';
import { mp4Bytes, multipartBody, pngBytes } from '../../../test/fixtures/media.js';
import type { Scenario } from '../scenario.js';
import { startBenchTemporal } from '../stack.js';
import { latencySummary, printFigure, printNote } from '../stats.js';

export const uploadScenario: Scenario = {
  name: 'upload',
  summary: 'POST /api/vlogs: 202 latency of small uploads, API memory while a large clip streams',
  async run({ size }) {
    const smallRequests = size('requests', 50, 3);
    const largeMiB = size('large-mib', 256, 8);

    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-bench-'));
    const secret = 'bench-secret-that-is-long-enough-for-hs256';
    const server = await startBenchTemporal(dataDir, 'vlogflow');

    const config = loadConfig({
      DATA_DIR: dataDir,
      AUTH_JWT_SECRET: secret,
      LOG_LEVEL: 'silent',
      TEMPORAL_TASK_QUEUE: 'bench-nobody-polls',
      VERTEX_PROJECT: 'bench',
      VEO_OUTPUT_GCS_URI: 'gs://bench/out/',
      GEMINI_API_KEY: 'bench',
      VLOG_MAX_FILE_BYTES: String((largeMiB + 1) * 1024 * 1024),
      // Every accepted upload stays in flight (no worker runs them): room for all of them.
      USER_MAX_JOBS_IN_FLIGHT: String(smallRequests + 10),
      VLOG_MAX_UPLOADS_IN_PROGRESS_PER_USER: String(smallRequests + 10),
      USER_RATE_LIMIT_REQUESTS: '1000000',
    });
    const db = await openDatabase({ dataDir });
    const temporal = createTemporalAccess({ address: server.address }, 'vlogflow');
    const app = await buildApp({
      config,
      db,
      temporal,
      mediaStorage: createMediaStorage(config, secret),
      jwtSecret: secret,
      logger: createLogger(config, 'bench'),
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/api/vlogs`;
    const authorization = `Bearer ${await mintToken(secret, 'bench')}`;

    const mp4Header = mp4Bytes(16);

    // The baseline: what moving the same bytes over HTTP costs, nothing done with them.
    const drain = createServer((request, response) => {
      request.resume();
      request.once('end', () => response.writeHead(202).end('{}'));
    });
    await new Promise<void>((resolve) => drain.listen(0, '127.0.0.1', resolve));
    const drainUrl = `http://127.0.0.1:${(drain.address() as AddressInfo).port}/`;

    // Small uploads: two photos and a short clip, one request at a time, alternating with the
    // baseline.
    const latencies: number[] = [];
    const drainLatencies: number[] = [];
    for (let i = 0; i < smallRequests; i += 1) {
      const { payload, headers } = multipartBody({ title: 'Bench' }, [
        {
          field: 'media',
          filename: 'a.png',
          contentType: 'image/png',
          bytes: pngBytes(200 * 1024),
        },
        {
          field: 'media',
          filename: 'b.png',
          contentType: 'image/png',
          bytes: pngBytes(200 * 1024),
        },
        {
          field: 'media',
          filename: 'c.mp4',
          contentType: 'video/mp4',
          bytes: mp4Bytes(1024 * 1024),
        },
      ]);
      for (const [target, into] of [
        [url, latencies],
        [drainUrl, drainLatencies],
      ] as const) {
        const started = performance.now();
        const response = await fetch(target, {
          method: 'POST',
          headers: { authorization, ...headers },
          body: payload,
        });
        const answer = await response.text();
        into.push(performance.now() - started);
        if (response.status !== 202) throw new Error(`POST answered ${response.status}: ${answer}`);
      }
    }
    drain.close();

    // A large clip, generated while it is sent so the client holds 1 MiB at a time (the
    // fixtures' multipartBody builds whole bodies in memory, which would defeat the measurement).
    const boundary = 'benchlarge';
    const chunk = randomBytes(1024 * 1024);
    let sentMiB = 0;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(
          Buffer.from(
            `--${boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nLarge\r\n` +
              `--${boundary}\r\nContent-Disposition: form-data; name="media"; filename="big.mp4"\r\nContent-Type: video/mp4\r\n\r\n`,
          ),
        );
        controller.enqueue(mp4Header);
      },
      pull(controller) {
        if (sentMiB >= largeMiB) {
          controller.enqueue(Buffer.from(`\r\n--${boundary}--\r\n`));
          controller.close();
          return;
        }
        sentMiB += 1;
        controller.enqueue(chunk);
      },
    });
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
    const largeStarted = performance.now();
    const large = await fetch(url, {
      method: 'POST',
      headers: { authorization, 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: stream,
      duplex: 'half',
    });
    await large.arrayBuffer();
    const largeMs = performance.now() - largeStarted;
    clearInterval(sampler);

    const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);
    const small = latencySummary(latencies);
    printFigure(
      'upload small p50',
      {
        label: 'POST /api/vlogs 202, 2 photos (200 KiB) + 1 clip (1 MiB)',
        value: small.p50,
        unit: 'ms',
      },
      {
        label: 'the same bytes to a drain-only server',
        value: latencySummary(drainLatencies).p50,
        unit: 'ms',
      },
    );
    printNote(
      `${smallRequests} requests one at a time: p99 ${small.p99.toFixed(1)} ms, max ${small.max.toFixed(1)} ms`,
    );
    if (large.status !== 202) throw new Error(`the large upload answered ${large.status}`);
    printFigure(
      'upload large memory',
      { label: 'API process RSS growth', value: (rssPeak - rssBefore) / 2 ** 20, unit: 'MiB' },
      { label: 'clip size', value: largeMiB, unit: 'MiB' },
    );
    printNote(
      `${largeMiB} MiB clip: ${large.status} in ${(largeMs / 1000).toFixed(1)} s; RSS ${mib(rssBefore)} MiB before, ${mib(rssPeak)} MiB at peak`,
    );

    await app.close();
    await temporal.close();
    await db.destroy();
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  },
};
