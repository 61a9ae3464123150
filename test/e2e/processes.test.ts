import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { JobView } from '../../src/api/schemas/jobs.js';
import { mintToken } from '../../src/auth.js';
import { findMediaTools } from '../../src/media/tools.js';
import { controlledRenders } from '../fakes/media-tools.js';
import { multipartBody, renderTestPhoto, renderTestVideo } from '../fixtures/media.js';
import { testJwtSecret } from '../support/harness.js';
import { createTestDatabase } from '../support/database.js';
import { testEnv } from '../support/env.js';
import { parseMetrics } from '../support/metrics.js';
import { eventually } from '../support/eventually.js';
import { freePort, freePorts, onFreePorts } from '../support/ports.js';
import { openEventStream } from '../support/sse.js';
import {
  descendantsOf,
  isAlive,
  processesWorkingIn,
  runNpmScript,
  startService,
  type ServiceProcess,
} from '../support/processes.js';
import { uniqueTaskQueue } from '../support/temporal.js';

async function api<T>(baseUrl: string, token: string, route: string, init: RequestInit = {}) {
  const response = await fetch(`${baseUrl}${route}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  });
  return { status: response.status, body: (await response.json()) as T };
}

function waitForJob(
  baseUrl: string,
  token: string,
  id: string,
  done: (job: JobView) => boolean,
  what: string,
  timeoutMs = 60_000,
) {
  return eventually(
    async () => (await api<JobView>(baseUrl, token, `/api/jobs/${id}`)).body,
    done,
    { what, timeoutMs },
  );
}

/** What `npm start` printed: where its API is and a token for it. */
function startBanner(service: ServiceProcess): { baseUrl: string; token: string } {
  const output = service.output.join('\n');
  return {
    baseUrl: /API: +(http:\/\/\S+)/.exec(output)?.[1] ?? '',
    token: /export TOKEN=(\S+)/.exec(output)?.[1] ?? '',
  };
}

/** The pid of the dev server a stack logged it started. */
function devServerPid(service: ServiceProcess): number {
  const pid = service.logs().find((line) => line['msg'] === 'Temporal dev server started')?.['pid'];
  assert.equal(typeof pid, 'number', 'the stack logged its dev server pid');
  return pid as number;
}

/** A process's parent, read from /proc (Linux only, like the rest of the process tests). */
async function parentPid(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name in parentheses may hold spaces; the fields after it do not.
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** The API's 'job accepted' log line of a job. */
function acceptedLog(service: ServiceProcess, jobId: string): Record<string, unknown> {
  const line = service
    .logs()
    .find((entry) => entry['msg'] === 'job accepted' && entry['jobId'] === jobId);
  assert.ok(line, `no 'job accepted' line for ${jobId}`);
  return line;
}

describe('service processes', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  const running: ServiceProcess[] = [];
  after(async () => {
    for (const process of running) await process.stop('SIGKILL');
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** A stack's five ports, as its environment names them. */
  const portsEnv = ([api, grpc, ui, http, metrics]: number[]) => ({
    API_PORT: String(api),
    TEMPORAL_DEV_PORT: String(grpc),
    TEMPORAL_DEV_UI_PORT: String(ui),
    TEMPORAL_DEV_HTTP_PORT: String(http),
    TEMPORAL_DEV_METRICS_PORT: String(metrics),
  });

  /** The environment of an `npm start` stack of its own: a data folder and its five ports. */
  async function stackEnv(ports: number[]) {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-start-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    return { DATA_DIR: dataDir, ...portsEnv(ports), TEMPORAL_CLI_PATH: testEnv.temporalCliPath };
  }

  function startStack(env: Record<string, string>): ServiceProcess {
    const service = startService('src/all-in-one.ts', env);
    running.push(service);
    return service;
  }

  /**
   * A stack of its own (`extra` laid over its environment), once its banner is out; on fresh
   * ports if another process took one of them before the stack bound it.
   */
  const startReadyStack = (extra: Record<string, string> = {}) =>
    onFreePorts(5, async (ports) => {
      const env = { ...(await stackEnv(ports)), ...extra };
      const stack = startStack(env);
      await stack.waitForLine(/Ctrl-C stops everything/);
      return { stack, env };
    });

  /**
   * A stack started again on the data folder of `env`, once its banner is out, on fresh ports:
   * another test file's process may have taken one of the last stack's since it stopped.
   */
  const restartReadyStack = (env: Record<string, string>) =>
    onFreePorts(5, async (ports) => {
      const stack = startStack({ ...env, ...portsEnv(ports) });
      await stack.waitForLine(/Ctrl-C stops everything/);
      return stack;
    });

  it('npm start runs everything on embedded defaults, stops cleanly on Ctrl-C mid-render and mid-answer, and resumes its jobs on the next start', async () => {
    // The real ffmpeg and ffprobe, found on PATH, with renders the test can hold back.
    const tools = await findMediaTools();
    assert.ok(tools);
    const bin = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-start-bin-'));
    cleanups.push(() => rm(bin, { recursive: true, force: true }));
    const renders = await controlledRenders(tools, bin);
    await writeFile(path.join(bin, 'ffprobe'), `#!/bin/sh\nexec '${tools.ffprobe}' "$@"\n`);
    await chmod(path.join(bin, 'ffprobe'), 0o755);
    const { stack: first, env } = await startReadyStack({
      PATH: `${bin}:${process.env['PATH']}`,
    });
    const { baseUrl, token } = startBanner(first);
    assert.match(
      first.output.join('\n'),
      /Temporal UI: +http:\/\/127\.0\.0\.1:\d+\/namespaces\/vlogflow\/workflows/,
    );
    const ready = await fetch(`${baseUrl}/readyz`);
    assert.equal(ready.status, 200);
    // The banner's link to the web page signs it in with the same token, in the fragment,
    // which a browser never sends; the page itself is served at / under its policy.
    assert.equal(
      /Web page: +(\S+)/.exec(first.output.join('\n'))?.[1],
      `${baseUrl}/#token=${token}`,
    );
    const page = await fetch(`${baseUrl}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self';/);
    assert.match(await page.text(), /<script type="module" src="\/assets\/app-\w+\.js">/);
    // With no model configured, AI jobs run on the tiny embedded one, and the banner says so.
    assert.match(
      first.output.join('\n'),
      /AI jobs: +embedded model SmolLM2-135M-Instruct\.Q4_1\n.*tiny model/,
    );

    const quick = await api<JobView>(baseUrl, token, '/api/probes', {
      method: 'POST',
      body: JSON.stringify({ steps: 1, stepDelayMs: 0 }),
    });
    assert.equal(quick.status, 202);
    await waitForJob(
      baseUrl,
      token,
      quick.body.id,
      (job) => job.status === 'completed',
      'quick probe completed',
    );
    // The API shares its process with the workflows' worker, so the start ran eagerly.
    assert.equal(acceptedLog(first, quick.body.id)['eagerlyStarted'], true);
    // And its /metrics shows both sides: the job the worker ran, the SDK's runtime, the API's
    // requests and the shared state.
    const metrics = parseMetrics(await (await fetch(`${baseUrl}/metrics`)).text());
    assert.equal(
      metrics.value('vlogflow_jobs_finished_total', { kind: 'probe', outcome: 'completed' }),
      1,
    );
    assert.ok(metrics.value('temporal_worker_task_slots_available') > 0);
    assert.ok(
      metrics.value('vlogflow_http_request_duration_seconds_count', { route: '/api/probes' }) >= 1,
    );
    assert.ok(metrics.value('vlogflow_task_queue_pollers', { queue: 'workflows' }) >= 1);

    // An AI job answering on the embedded model and a vlog that ffmpeg renders when Ctrl-C
    // reaches the whole process group: the children run in groups of their own, so it reaches
    // only the stack, which ends both at once (they cost nothing to redo) and stops in seconds,
    // not after the worker's 30 s grace time; both run again after the next start.
    await renders.holdRenders();
    const form = multipartBody({ title: 'Ctrl-C', durationSeconds: '4' }, [
      {
        field: 'media',
        filename: 'photo.jpg',
        contentType: 'image/jpeg',
        bytes: await renderTestPhoto(tools.ffmpeg, 'jpg'),
      },
      {
        field: 'media',
        filename: 'clip.mp4',
        contentType: 'video/mp4',
        bytes: await renderTestVideo(tools.ffmpeg, 4, { size: '1280x720', audio: true }),
      },
    ]);
    const uploaded = await fetch(`${baseUrl}/api/vlogs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, ...form.headers },
      body: form.payload,
    });
    assert.equal(uploaded.status, 202, await uploaded.clone().text());
    const vlog = (await uploaded.json()) as JobView;
    const renderWork = path.join(env.DATA_DIR, 'render-work');
    await eventually(
      () => processesWorkingIn(renderWork),
      (found) => found.length > 0,
      { what: 'the render held', timeoutMs: 60_000 },
    );
    // A probe still running when the service stops must finish after the next start too.
    const slow = await api<JobView>(baseUrl, token, '/api/probes', {
      method: 'POST',
      body: JSON.stringify({ steps: 3, stepDelayMs: 2_000 }),
    });
    await waitForJob(
      baseUrl,
      token,
      slow.body.id,
      (job) => job.status === 'running',
      'slow probe running',
    );
    const answering = await api<JobView>(baseUrl, token, '/api/ai/jobs', {
      method: 'POST',
      body: JSON.stringify({
        type: 'SUBGOAL_GENERATION',
        input: { goal: 'Run a marathon', maxItems: 10 },
      }),
    });
    assert.equal(answering.status, 202);
    const stream = await openEventStream(`${baseUrl}/api/ai/jobs/${answering.body.id}/events`, {
      authorization: `Bearer ${token}`,
    });
    try {
      while ((await stream.next(60_000)).event !== 'output');
    } finally {
      stream.close();
    }
    // The model is writing (an answer takes it seconds): let the held render start. Paused
    // (SIGSTOP), ffmpeg outlasts the stack's shutdown however fast this machine renders.
    await renders.releaseRenders();
    const [ffmpeg] = await eventually(
      async () =>
        (await processesWorkingIn(renderWork)).filter(({ command }) => command === tools.ffmpeg),
      (found) => found.length > 0,
      { what: 'ffmpeg rendering the vlog', timeoutMs: 60_000, intervalMs: 20 },
    );
    process.kill(ffmpeg!.pid, 'SIGSTOP');

    const firstServer = devServerPid(first);
    const started = await descendantsOf(first.child.pid!);
    for (const child of [/serve\.py/, /ffmpeg/, /temporal server start-dev/])
      assert.ok(
        started.some(({ command }) => child.test(command)),
        `${child} among ${JSON.stringify(started)}`,
      );
    const ctrlCAt = performance.now();
    assert.equal(await first.stop('SIGINT'), 0, first.output.slice(-20).join('\n'));
    const stopMs = performance.now() - ctrlCAt;
    assert.ok(stopMs < 15_000, `npm start took ${Math.round(stopMs)} ms to stop`);
    assert.ok(!first.logs().some((line) => String(line['msg']).startsWith('grace time over')));
    assert.equal(isAlive(firstServer), false, 'the dev server outlived npm start');
    assert.deepEqual(
      started.filter(({ pid }) => isAlive(pid)),
      [],
      'processes that outlived npm start',
    );
    assert.ok(first.logs().some((line) => line['msg'] === 'stopped'));
    // The stack ended the render itself, as an interruption its next attempt redoes.
    const renderFailure = first
      .logs()
      .find(
        (line) =>
          line['msg'] === 'Activity failed' && line['activityType'] === 'startVideoGeneration',
      )?.['err'] as { message?: string } | undefined;
    assert.equal(
      renderFailure?.message,
      'The render did not finish: ffmpeg was stopped by this worker shutting down',
    );

    const second = await restartReadyStack(env);
    const { baseUrl: secondUrl } = startBanner(second);
    // The same data: the first run's token (its secret is kept in DATA_DIR) and jobs are still there.
    const kept = await api<JobView>(secondUrl, token, `/api/jobs/${quick.body.id}`);
    assert.equal(kept.status, 200);
    assert.equal(kept.body.status, 'completed');
    const resumed = await waitForJob(
      secondUrl,
      token,
      slow.body.id,
      (job) => job.status === 'completed',
      'slow probe completed after restart',
    );
    assert.deepEqual(resumed.result, { stepsCompleted: 3 });
    for (const [id, what] of [
      [vlog.id, 'vlog'],
      [answering.body.id, 'AI job'],
    ] as const) {
      // After the restart the embedded model starts again and answers from scratch, with the
      // render and the other test files on the same 2 cores: a CI run took over a minute.
      const done = await waitForJob(
        secondUrl,
        token,
        id,
        (job) => ['completed', 'failed', 'cancelled', 'timeout'].includes(job.status),
        `${what} finished after restart`,
        180_000,
      );
      assert.equal(done.status, 'completed', `${what}: ${JSON.stringify(done.error)}`);
    }
    assert.equal(await second.stop('SIGTERM'), 0);
  });

  it('a second stack on a taken dev-server port refuses, naming the variable, and leaves the first stack and its jobs alone', async () => {
    const { stack: first, env: firstEnv } = await startReadyStack();
    const { baseUrl, token } = startBanner(first);
    const slow = await api<JobView>(baseUrl, token, '/api/probes', {
      method: 'POST',
      body: JSON.stringify({ steps: 3, stepDelayMs: 1_000 }),
    });
    assert.equal(slow.status, 202);
    await waitForJob(baseUrl, token, slow.body.id, (job) => job.status === 'running', 'running');

    // Its own data folder and ports, except the dev server's gRPC port.
    const secondEnv = {
      ...(await stackEnv(await freePorts(5))),
      TEMPORAL_DEV_PORT: firstEnv.TEMPORAL_DEV_PORT,
    };
    const second = startStack(secondEnv);
    // A second stack that runs instead (talking to the first one's server) fails here.
    await eventually(
      async () => second.child.exitCode,
      (code) => code !== null,
      { what: 'the second stack exited', timeoutMs: 60_000 },
    );
    assert.equal(second.child.exitCode, 1, second.output.join('\n'));
    assert.match(
      second.output.join('\n'),
      new RegExp(
        `TEMPORAL_DEV_PORT: port ${secondEnv['TEMPORAL_DEV_PORT']} on 127\\.0\\.0\\.1, .* is taken; set TEMPORAL_DEV_PORT to a free port`,
      ),
    );
    // Nothing of the second stack was made: no dev server database, no embedded database.
    assert.deepEqual(await readdir(secondEnv.DATA_DIR), []);

    const done = await waitForJob(
      baseUrl,
      token,
      slow.body.id,
      (job) => job.status === 'completed',
      'the first stack completed its job',
    );
    assert.deepEqual(done.result, { stepsCompleted: 3 });
    const quick = await api<JobView>(baseUrl, token, '/api/probes', {
      method: 'POST',
      body: JSON.stringify({ steps: 1, stepDelayMs: 0 }),
    });
    await waitForJob(
      baseUrl,
      token,
      quick.body.id,
      (job) => job.status === 'completed',
      'a job submitted after the refusal completed',
    );
    assert.equal(await first.stop('SIGTERM'), 0);
  });

  // systemd, docker and `timeout` stop a service with SIGTERM to the process they started: npm,
  // whose script's shell would die of it and leave the stack running, orphaned, on its ports.
  it('npm start starts its dev server again when it exits by itself, its jobs go on, and SIGTERM to npm alone stops the whole stack', async () => {
    const npm = process.env['npm_execpath'];
    assert.ok(npm, 'the suite runs under npm, which names its own entry point');
    const stack = await onFreePorts(5, async (ports) => {
      const started = startService(npm, await stackEnv(ports), ['start'], []);
      running.push(started);
      await started.waitForLine(/Ctrl-C stops everything/);
      return started;
    });
    const { baseUrl, token } = startBanner(stack);
    const probe = await api<JobView>(baseUrl, token, '/api/probes', {
      method: 'POST',
      body: JSON.stringify({ steps: 3, stepDelayMs: 2_000 }),
    });
    assert.equal(probe.status, 202);
    const first = devServerPid(stack);
    process.kill(first, 'SIGKILL');
    await eventually(
      async () =>
        stack.logs().filter((line) => line['msg'] === 'Temporal dev server started').length,
      (started) => started === 2,
      { what: 'the dev server started again', timeoutMs: 60_000 },
    );
    assert.ok(
      stack.logs().some((line) => line['msg'] === 'Temporal dev server exited: starting it again'),
    );
    await waitForJob(
      baseUrl,
      token,
      probe.body.id,
      (job) => job.status === 'completed',
      'the probe completed on the new server',
    );
    assert.equal(isAlive(first), false);

    const processes = await descendantsOf(stack.child.pid!);
    assert.ok(processes.length >= 2, `npm start's processes: ${JSON.stringify(processes)}`);
    // Orphaned, they are out of reach of the process group's SIGKILL at the end.
    cleanups.push(async () => {
      for (const { pid } of processes) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    });
    process.kill(stack.child.pid!, 'SIGTERM');
    await eventually(
      async () => processes.filter(({ pid }) => isAlive(pid)),
      (alive) => alive.length === 0,
      { what: 'every process of the stack gone', timeoutMs: 60_000 },
    );
    assert.ok(
      stack.logs().some((line) => line['msg'] === 'stopped'),
      stack.output.slice(-20).join('\n'),
    );
  });

  it('npm run temporal:dev fails, saying so, when its dev server exits by itself', async () => {
    const dev = await onFreePorts(5, async (ports) => {
      const started = startService('temporal/cli.ts', await stackEnv(ports), ['dev']);
      running.push(started);
      await started.waitForLine(/^Temporal dev server: TEMPORAL_ADDRESS=/);
      return started;
    });
    process.kill(devServerPid(dev), 'SIGKILL');
    assert.equal(await dev.exited, 1);
    assert.ok(
      dev.logs().some((line) => line['msg'] === 'Temporal dev server exited'),
      dev.output.join('\n'),
    );
  });

  it('a stack SIGKILLed with its process group leaves no dev server; one left behind anyway is stopped by the next start', async () => {
    const { stack: killed, env } = await startReadyStack();
    const killedServer = devServerPid(killed);
    await killed.stop('SIGKILL');
    await eventually(
      async () => isAlive(killedServer),
      (alive) => !alive,
      { what: 'the dev server of a SIGKILLed stack gone', timeoutMs: 10_000 },
    );

    // A server whose supervisor died too (killed on its own first) survives its stack. The
    // stack is frozen first: awake, it would start its server again the moment it saw it go...
    const orphaning = await restartReadyStack(env);
    const orphan = devServerPid(orphaning);
    cleanups.push(async () => isAlive(orphan) && process.kill(orphan, 'SIGKILL'));
    process.kill(orphaning.child.pid!, 'SIGSTOP');
    process.kill(await parentPid(orphan), 'SIGKILL');
    await orphaning.stop('SIGKILL');
    assert.equal(isAlive(orphan), true, 'the orphaned dev server still runs');

    // ...and the next start on the same data folder stops it and says so.
    const next = await restartReadyStack(env);
    const stopped = next
      .logs()
      .find((line) => String(line['msg']).startsWith('Stopping a leftover Temporal dev server'));
    assert.equal(stopped?.['pid'], orphan, next.output.join('\n'));
    assert.equal(isAlive(orphan), false);
    assert.notEqual(devServerPid(next), orphan);
    assert.equal(await next.stop('SIGTERM'), 0);
  });

  it('runs the built API and worker as separate processes against a shared server and database', async () => {
    const build = await runNpmScript('build');
    assert.equal(build.code, 0, build.output);
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const env = {
      DATABASE_URL: database.url,
      TEMPORAL_ADDRESS: testEnv.temporalAddress,
      TEMPORAL_NAMESPACE: testEnv.temporalNamespace,
      TEMPORAL_TASK_QUEUE: uniqueTaskQueue('split'),
      AUTH_JWT_SECRET: testJwtSecret,
    };
    const workerProcess = startService('dist/src/worker/worker-process.js', env);
    running.push(workerProcess);
    const { apiProcess, port } = await onFreePorts(1, async ([port]) => {
      const started = startService('dist/src/api/api-process.js', {
        ...env,
        API_PORT: String(port),
      });
      running.push(started);
      await started.waitForLine(/Server listening/);
      return { apiProcess: started, port };
    });
    await workerProcess.waitForLine(/worker started/);
    // A production worker loads the prebuilt bundle instead of bundling at start.
    assert.ok(!workerProcess.logs().some((line) => line['msg'] === 'Workflow bundle created'));

    const baseUrl = `http://127.0.0.1:${port}`;
    const token = await mintToken(testJwtSecret, 'split-user');
    const accepted = await api<JobView>(baseUrl, token, '/api/probes', {
      method: 'POST',
      body: JSON.stringify({ steps: 2, stepDelayMs: 100 }),
    });
    assert.equal(accepted.status, 202);
    const done = await waitForJob(
      baseUrl,
      token,
      accepted.body.id,
      (job) => job.status === 'completed',
      'probe completed',
    );
    assert.equal(done.progress, 100);
    // No worker of the API's process polls the workflows' queue: nothing to start eagerly on.
    assert.equal(acceptedLog(apiProcess, done.id)['eagerlyStarted'], false);

    // The compiled API serves the web page `npm run build` wrote: no build tool at run time.
    const page = await fetch(`${baseUrl}/`);
    assert.equal(page.status, 200);
    const script = /src="\/(assets\/app-\w+\.js)"/.exec(await page.text())?.[1];
    assert.ok(script && build.output.includes(`web page: ${script} `), build.output);
    const served = await fetch(`${baseUrl}/${script}`);
    assert.equal(served.status, 200);
    assert.match(served.headers.get('content-security-policy') ?? '', /script-src 'self';/);

    // The API never runs a job and the worker never serves HTTP.
    assert.ok(
      !apiProcess
        .logs()
        .some((line) => line['activityType'] !== undefined || line['sdkComponent'] === 'worker'),
    );
    assert.ok(
      workerProcess
        .logs()
        .some((line) => line['activityType'] === 'recordJobUpdates' && line['jobId'] === done.id),
    );
    assert.ok(
      !workerProcess.logs().some((line) => String(line['msg']).startsWith('Server listening')),
    );

    assert.equal(await apiProcess.stop('SIGTERM'), 0);
    assert.equal(await workerProcess.stop('SIGTERM'), 0);
  });

  it('names the setting of a database, Temporal, address or folder it cannot use at start, in one line without a stack', async () => {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const [closedPort, apiPort] = await freePorts(2);
    const shared = {
      TEMPORAL_NAMESPACE: testEnv.temporalNamespace,
      TEMPORAL_TASK_QUEUE: uniqueTaskQueue('unreachable'),
      AUTH_JWT_SECRET: testJwtSecret,
      API_PORT: String(apiPort),
    };
    const cases = [
      {
        entry: 'src/api/api-process.ts',
        env: {
          ...shared,
          DATABASE_URL: `postgres://vlog:hunter2@127.0.0.1:${closedPort}/nothing`,
          TEMPORAL_ADDRESS: testEnv.temporalAddress,
        },
        line: new RegExp(
          `^DATABASE_URL: cannot use the database at postgres://\\*\\*\\*:\\*\\*\\*@127\\.0\\.0\\.1:${closedPort}/nothing: .*ECONNREFUSED`,
        ),
      },
      {
        entry: 'src/worker/worker-process.ts',
        env: {
          ...shared,
          DATABASE_URL: database.url,
          TEMPORAL_ADDRESS: `127.0.0.1:${closedPort}`,
        },
        line: new RegExp(
          `^TEMPORAL_ADDRESS: cannot reach Temporal at 127\\.0\\.0\\.1:${closedPort}: `,
        ),
      },
      {
        entry: 'src/api/api-process.ts',
        env: {
          ...shared,
          DATABASE_URL: database.url,
          TEMPORAL_ADDRESS: testEnv.temporalAddress,
          // An address of TEST-NET-1 (RFC 5737): no machine has it.
          API_HOST: '192.0.2.1',
        },
        line: new RegExp(`^API_HOST / API_PORT: cannot listen on 192\\.0\\.2\\.1:${apiPort}: `),
      },
      // Both checked their ports with a listen whose other failures were thrown as they came:
      // `Error: listen EADDRNOTAVAIL …` with its stack, naming no setting.
      {
        entry: 'src/all-in-one.ts',
        env: { ...shared, DATABASE_URL: '', TEMPORAL_ADDRESS: '', API_HOST: '192.0.2.1' },
        line: new RegExp(`^API_HOST / API_PORT: cannot listen on 192\\.0\\.2\\.1:${apiPort}: `),
      },
      {
        entry: 'src/worker/worker-process.ts',
        env: {
          ...shared,
          DATABASE_URL: database.url,
          TEMPORAL_ADDRESS: testEnv.temporalAddress,
          METRICS_HOST: '192.0.2.1',
        },
        line: /^METRICS_HOST \/ METRICS_PORT: cannot listen on 192\.0\.2\.1:0: .*EADDRNOTAVAIL/,
      },
      // /proc takes no new folders: Node's own recursive mkdir retried that for ever, silently.
      {
        entry: 'src/all-in-one.ts',
        env: { ...shared, DATABASE_URL: '', TEMPORAL_ADDRESS: '', DATA_DIR: '/proc/vlogflow' },
        line: /^DATA_DIR: cannot make the folder \/proc\/vlogflow: ENOENT/,
      },
      {
        entry: 'src/api/api-process.ts',
        env: {
          ...shared,
          DATABASE_URL: database.url,
          TEMPORAL_ADDRESS: testEnv.temporalAddress,
          AUTH_JWT_SECRET: '',
          DATA_DIR: '/proc/vlogflow/data',
        },
        line: /^DATA_DIR: cannot make the folder \/proc\/vlogflow\/data: ENOENT/,
      },
    ];
    const services = cases.map(({ entry, env }) => startService(entry, env));
    running.push(...services);
    for (const [index, service] of services.entries()) {
      assert.equal(await service.exited, 1, cases[index]!.entry);
      const output = service.output.join('\n');
      assert.ok(
        service.output.some((line) => cases[index]!.line.test(line)),
        `${cases[index]!.line}:\n${output}`,
      );
      assert.doesNotMatch(output, /^\s+at /m, 'no stack trace');
      assert.doesNotMatch(output, /hunter2/, 'no password');
    }
  });

  // Both took any argument and ignored it: `npm run api -- --port 8080` listened on API_PORT's
  // port as if nothing had been asked.
  it('refuses arguments to npm start and npm run api, which are set by the environment only', async () => {
    // Settings a start fails on at once (exit 1, nothing started), should the arguments be
    // ignored again.
    const failing = {
      DATABASE_URL: '',
      TEMPORAL_ADDRESS: '',
      API_PORT: String(await freePort()),
      DATA_DIR: '/proc/vlogflow',
    };
    const cases = [
      {
        entry: 'src/all-in-one.ts',
        args: ['--queues', 'media'],
        line: /^Unknown option '--queues'/,
      },
      {
        entry: 'src/api/api-process.ts',
        args: ['--port', '8080'],
        line: /^Unknown option '--port'/,
      },
      { entry: 'src/api/api-process.ts', args: ['8080'], line: /^Unexpected argument '8080'/ },
    ];
    const services = cases.map(({ entry, args }) => startService(entry, failing, args));
    running.push(...services);
    for (const [index, service] of services.entries()) {
      const { entry, line } = cases[index]!;
      assert.equal(await service.exited, 2, entry);
      const output = service.output.join('\n');
      assert.ok(
        service.output.some((text) => line.test(text)),
        `${line}:\n${output}`,
      );
      assert.match(output, /takes no arguments: it is set by environment variables/);
    }
  });

  it('refuses to start the API alone on the embedded database, naming the variables to set', async () => {
    const apiProcess = startService('src/api/api-process.ts', {
      DATABASE_URL: '',
      TEMPORAL_ADDRESS: '',
    });
    running.push(apiProcess);
    assert.equal(await apiProcess.exited, 1);
    const output = apiProcess.output.join('\n');
    assert.match(output, /DATABASE_URL: required when the API runs as its own process/);
    assert.match(output, /TEMPORAL_ADDRESS: required/);
  });
});
