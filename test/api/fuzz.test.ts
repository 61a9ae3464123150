// Fuzzes the whole API from its own OpenAPI document with Schemathesis, over a real socket:
// every operation (the vlog upload through its documented multipart form), valid and invalid
// requests, derandomized so every run sends the same ones. No answer may be a server error,
// an undocumented status or content type, or break its documented schema.
// FUZZ_MAX_EXAMPLES, FUZZ_PHASES, FUZZ_CHECKS and FUZZ_SEED (random generation) run it harder:
// see docs/development.md, "Fuzzing the API".
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import { runInstallScript } from '../../temporal/dev-server.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { startHarness, type Harness } from '../support/harness.js';
import { uniqueTaskQueue } from '../support/temporal.js';

const maxExamples = process.env['FUZZ_MAX_EXAMPLES'] ?? '15';
const phases = process.env['FUZZ_PHASES'] ?? 'examples,coverage,fuzzing,stateful';
const checks =
  process.env['FUZZ_CHECKS'] ??
  [
    'not_a_server_error',
    'status_code_conformance',
    'content_type_conformance',
    'response_headers_conformance',
    'response_schema_conformance',
    'ignored_auth',
  ].join(',');
const seed = process.env['FUZZ_SEED'];

describe('fuzzing the API from its OpenAPI document', { timeout: 600_000 }, () => {
  let h: Harness;
  let google: FakeGoogle;
  let schemathesis: string;
  let workDir: string;
  let baseUrl: string;
  const user = `fuzzer-${randomUUID().slice(0, 8)}`;

  before(async () => {
    ({ schemathesis } = await runInstallScript('test/fuzz/install.sh', ['schemathesis']));
    workDir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-fuzz-'));
    // A worker runs the jobs the fuzzer starts, as in production: cancel and retry get the
    // workflow's verdict, and progress streams reach their end.
    google = new FakeGoogle(async () => undefined);
    await google.start();
    const taskQueue = uniqueTaskQueue('fuzz');
    const env = {
      GEMINI_API_KEY: 'k',
      GEMINI_BASE_URL: google.url,
      VLOG_PROVIDER: 'local',
      STORAGE_LOCAL_DIR: path.join(workDir, 'storage'),
      DATA_DIR: path.join(workDir, 'data'),
      // Limits would answer most requests with 429 and leave the routes behind them untested.
      USER_RATE_LIMIT_REQUESTS: '1000000',
      USER_READ_RATE_LIMIT_REQUESTS: '1000000',
      USER_MAX_JOBS_IN_FLIGHT: '1000000',
    };
    h = await startHarness({
      taskQueue,
      env,
      worker: (db) =>
        createActivityDependencies(loadConfig({ ...env, TEMPORAL_TASK_QUEUE: taskQueue }), db),
    });
    baseUrl = await h.api.listen();
  });
  after(async () => {
    for await (const execution of h.temporal.client.workflow.list({
      query: `UserId = "${user}"`,
    })) {
      h.terminateOnStop(execution.workflowId);
    }
    await h.stop();
    await google.stop();
    await rm(workDir, { recursive: true, force: true });
  });

  it('answers every generated request as its OpenAPI document says', async (t) => {
    const args = [
      'run',
      `${baseUrl}/openapi.json`,
      `--header=Authorization:${await h.user(user).authorization()}`,
      `--checks=${checks}`,
      `--phases=${phases}`,
      `--max-examples=${maxExamples}`,
      ...(seed ? [`--seed=${seed}`] : ['--generation-deterministic']),
      '--workers=1',
      '--request-timeout=15',
      '--no-color',
    ];
    const startedAt = Date.now();
    const { code, output } = await new Promise<{ code: number; output: string }>((resolve) => {
      execFile(
        schemathesis,
        args,
        { cwd: workDir, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1' } },
        (error, stdout, stderr) =>
          resolve({
            code: error ? Number((error as { code?: number }).code ?? 1) : 0,
            output: `${stdout}\n${stderr}`,
          }),
      );
    });
    const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
    const generated = /Test cases:\s*\n?\s*(.+)/.exec(output)?.[1]?.trim() ?? 'no summary';
    t.diagnostic(`schemathesis: ${seconds} s, ${generated}`);
    assert.equal(code, 0, `schemathesis exited ${code} after ${seconds} s:\n${output}`);
  });
});
