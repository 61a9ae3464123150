// `npm run bench -- render-load`: how much slower status reads (GET /api/vlogs/:id) get while
// 100 local renders are queued. Starts a real stack of its own, then in each repeat measures
// reads on the idle stack and, side by side, with 100 vlogs just accepted, and cancels them
// before the next repeat. Prints p99 (and max) loaded ÷ idle per repeat.
//
// By default it runs what `npm start` runs (one process, embedded database); `--split=1` runs
// the API and the worker as their own processes on PostgreSQL (BENCH_POSTGRES_URL, default
// postgres://postgres@127.0.0.1:5432/postgres; a scratch database is made and dropped).
// MEDIA_MAX_CONCURRENT_FFMPEG and MEDIA_FFMPEG_NICE pass through to the stack.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { mintToken } from '../../../src/auth.js';
import type { DevServer } from '../../../temporal/dev-server.js';
import { multipartBody, renderTestPhoto, renderTestVideo } from '../../../test/fixtures/media.js';
import { eventually } from '../../../test/support/eventually.js';
import { freePort } from '../../../test/support/ports.js';
import { startService, type ServiceProcess } from '../../../test/support/processes.js';
import { findMediaTools } from '../../../src/media/tools.js';
import type { Scenario } from '../scenario.js';
import { admin, postgresUrl, sourceEntryOf, startBenchTemporal } from '../stack.js';
import { percentile, printFigure, printNote } from '../stats.js';

export const renderLoadScenario: Scenario = {
  name: 'render-load',
  summary: 'p99 of vlog status reads with 100 local renders queued ÷ idle, on a stack of its own',
  async run({ size }) {
    const shape = size('split', 0, 0) === 1 ? 'split' : 'all-in-one';
    const repeats = size('repeats', 3, 1);
    const queued = size('renders', 100, 2);
    const readSeconds = size('read-seconds', 15, 1);
    const readers = size('readers', 4, 2);

    const tools = await findMediaTools();
    if (!tools) throw new Error('No ffmpeg found');
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-bench-load-'));
    const secret = 'bench-secret-that-is-long-enough-for-hs256';
    const apiPort = await freePort();
    const baseUrl = `http://127.0.0.1:${apiPort}`;
    const env: Record<string, string> = {
      DATA_DIR: dataDir,
      AUTH_JWT_SECRET: secret,
      API_PORT: String(apiPort),
      VLOG_PROVIDER: 'local',
      USER_MAX_JOBS_IN_FLIGHT: String(queued * 2),
      VLOG_MAX_UPLOADS_IN_PROGRESS_PER_USER: String(queued * 2),
      USER_RATE_LIMIT_REQUESTS: '1000000',
      USER_READ_RATE_LIMIT_REQUESTS: '1000000',
    };
    const services: ServiceProcess[] = [];
    let devServer: DevServer | undefined;
    let scratchDatabase: string | undefined;

    async function startStack(): Promise<void> {
      if (shape === 'all-in-one') {
        // Every port of its dev server free, not derived from the gRPC port: a derived one may
        // be taken on a machine running other stacks.
        for (const variable of [
          'TEMPORAL_DEV_PORT',
          'TEMPORAL_DEV_UI_PORT',
          'TEMPORAL_DEV_HTTP_PORT',
          'TEMPORAL_DEV_METRICS_PORT',
        ]) {
          env[variable] = String(await freePort());
        }
        const stack = startService(sourceEntryOf('start'), env);
        services.push(stack);
        await stack.waitForLine(/Ctrl-C stops everything/, 180_000);
        return;
      }
      devServer = await startBenchTemporal(dataDir, 'vlogflow');
      scratchDatabase = `vlogflow_bench_${randomUUID().slice(0, 8)}`;
      await admin((client) => client.query(`create database "${scratchDatabase}"`));
      const url = new URL(postgresUrl);
      url.pathname = `/${scratchDatabase}`;
      env['DATABASE_URL'] = url.href;
      env['TEMPORAL_ADDRESS'] = devServer.address;
      // The API first: it migrates the database the worker then reads.
      const api = startService(sourceEntryOf('api'), env);
      services.push(api);
      await api.waitForLine(/Server listening/, 120_000);
      const worker = startService(sourceEntryOf('worker'), env);
      services.push(worker);
      await worker.waitForLine(/worker started/, 180_000);
    }

    async function stopStack(): Promise<void> {
      for (const service of services.reverse()) await service.stop('SIGINT');
      await devServer?.stop();
      if (scratchDatabase)
        await admin((client) =>
          client.query(`drop database if exists "${scratchDatabase}" with (force)`),
        );
      await rm(dataDir, { recursive: true, force: true });
    }

    const authorization = `Bearer ${await mintToken(secret, 'bench')}`;
    const form = multipartBody({ title: 'Load', durationSeconds: '4' }, [
      {
        field: 'media',
        filename: 'photo.jpg',
        contentType: 'image/jpeg',
        bytes: await renderTestPhoto(tools.ffmpeg, 'jpg', { size: '1280x960' }),
      },
      {
        field: 'media',
        filename: 'clip.mp4',
        contentType: 'video/mp4',
        bytes: await renderTestVideo(tools.ffmpeg, 4, { size: '1280x720', audio: true }),
      },
    ]);

    async function submitVlog(): Promise<string> {
      const response = await fetch(`${baseUrl}/api/vlogs`, {
        method: 'POST',
        headers: { authorization, ...form.headers },
        body: form.payload,
      });
      if (response.status !== 202)
        throw new Error(`submit: ${response.status} ${await response.text()}`);
      return ((await response.json()) as { id: string }).id;
    }

    async function vlogStatus(id: string): Promise<string> {
      const response = await fetch(`${baseUrl}/api/vlogs/${id}`, { headers: { authorization } });
      if (response.status !== 200) throw new Error(`read: ${response.status}`);
      return ((await response.json()) as { status: string }).status;
    }

    const terminal = ['completed', 'failed', 'cancelled', 'timeout'];

    /** Latencies (ms) of status reads by `readers` concurrent clients for `readSeconds`. */
    async function measureReads(ids: string[]): Promise<number[]> {
      const latencies: number[] = [];
      const until = performance.now() + readSeconds * 1000;
      await Promise.all(
        Array.from({ length: readers }, async (_, reader) => {
          for (let index = reader; performance.now() < until; index += readers) {
            const started = performance.now();
            await vlogStatus(ids[index % ids.length]!);
            latencies.push(performance.now() - started);
          }
        }),
      );
      return latencies.sort((a, b) => a - b);
    }

    try {
      await startStack();
      printNote(
        `shape: ${shape}; MEDIA_MAX_CONCURRENT_FFMPEG=${process.env['MEDIA_MAX_CONCURRENT_FFMPEG'] ?? 'default'}; ` +
          `MEDIA_FFMPEG_NICE=${process.env['MEDIA_FFMPEG_NICE'] ?? 'default'}`,
      );
      printNote(
        `${queued} local 4 s 720p vlogs (1280×960 photo + 4 s 720p clip) queued per repeat; ` +
          `${readers} readers for ${readSeconds} s per phase`,
      );
      const warm = await submitVlog();
      await eventually(
        () => vlogStatus(warm),
        (status) => terminal.includes(status),
        { timeoutMs: 300_000, intervalMs: 500, what: 'the warm-up vlog finished' },
      );
      const known = [warm];
      for (let repeat = 1; repeat <= repeats; repeat += 1) {
        const idle = await measureReads(known);
        const batch: string[] = [];
        for (let index = 0; index < queued; index += 1) batch.push(await submitVlog());
        const loaded = await measureReads(batch);
        printFigure(
          `render-load repeat ${repeat} p99`,
          {
            label: `GET /api/vlogs/:id, ${queued} renders queued`,
            value: percentile(loaded, 99),
            unit: 'ms',
          },
          { label: 'the same reads idle', value: percentile(idle, 99), unit: 'ms' },
          '≤ 3',
        );
        printNote(
          `p50 idle ${percentile(idle, 50).toFixed(1)} ms, loaded ${percentile(loaded, 50).toFixed(1)} ms; ` +
            `max idle ${idle.at(-1)!.toFixed(1)} ms, loaded ${loaded.at(-1)!.toFixed(1)} ms (÷ ${(loaded.at(-1)! / idle.at(-1)!).toFixed(2)})`,
        );
        // Under load a cancel can time out (503) before the workflow answers: ask again until it
        // is accepted or the vlog has ended, then wait for every vlog to stop.
        for (const id of batch) {
          await eventually(
            async () => {
              const response = await fetch(`${baseUrl}/api/vlogs/${id}/cancel`, {
                method: 'POST',
                headers: { authorization, 'content-type': 'application/json' },
                body: '{}',
              });
              return response.status === 202 || terminal.includes(await vlogStatus(id));
            },
            (stopping) => stopping,
            { timeoutMs: 600_000, intervalMs: 1_000, what: `vlog ${id} cancelled` },
          );
        }
        for (const id of batch) {
          await eventually(
            () => vlogStatus(id),
            (status) => terminal.includes(status),
            { timeoutMs: 600_000, intervalMs: 200, what: `vlog ${id} stopped` },
          );
        }
        known.push(...batch);
      }
    } finally {
      await stopStack();
    }
  },
};
