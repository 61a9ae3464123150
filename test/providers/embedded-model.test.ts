import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { loadConfig } from '../../src/config.js';
import { FailureCode } from '../../src/jobs/failures.js';
import { EmbeddedModel } from '../../src/providers/embedded-model.js';
import { createProviders } from '../../src/providers/index.js';
import { ProviderError } from '../../src/providers/types.js';
import { createMediaStorage } from '../../src/storage/index.js';
import { testJwtSecret } from '../support/harness.js';
import { eventually } from '../support/eventually.js';
import { fromSource, isAlive, projectRoot } from '../support/processes.js';

/** The process group of a running process, from /proc/<pid>/stat (field 5). */
async function processGroupOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

// The real llama.cpp server and tiny model that embedded-model/install.sh put in .local/
// (test/run.ts installs them). A worker starts it as a child: a terminal's Ctrl-C must not reach
// it (the worker stops it in its order), something else killing it must not end AI jobs for
// good, and it must never outlive the worker.
describe('the embedded model server', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-embedded-model-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('runs in a process group of its own, ends at once on SIGINT, is started again after, and never after stop', async () => {
    const model = new EmbeddedModel({ threads: 1, logFile: path.join(dir, 'model.log') });
    try {
      const first = await model.serving();
      assert.notEqual(await processGroupOf(first.pid), await processGroupOf(process.pid));

      // A streamed answer in flight when a SIGINT reaches the server: it stops at once, where
      // llama.cpp's graceful stop held the answer open for 30 s.
      const response = await fetch(`${first.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: model.model,
          stream: true,
          max_tokens: 4_000,
          messages: [{ role: 'user', content: 'Count from 1 to 1000, one number a line.' }],
        }),
      });
      const answer = response.body!.getReader();
      assert.equal((await answer.read()).done, false);
      process.kill(first.pid, 'SIGINT');
      const signalledAt = performance.now();
      const ended = async () => {
        for (;;) if ((await answer.read()).done) return;
      };
      await ended().catch(() => undefined);
      const answerEndedMs = performance.now() - signalledAt;
      assert.ok(answerEndedMs < 10_000, `the answer ended ${answerEndedMs} ms after SIGINT`);

      // The next call starts a new server rather than handing out the dead one's address.
      const second = await eventually(
        () => model.serving(),
        (serving) => serving.pid !== first.pid,
        { what: 'a new server', timeoutMs: 60_000 },
      );
      assert.equal(isAlive(first.pid), false);
      assert.equal((await fetch(`${second.baseUrl}/models`)).status, 200);

      await model.stop();
      assert.equal(isAlive(second.pid), false);
      await assert.rejects(model.serving(), /stopped with this worker/);
    } finally {
      await model.stop();
    }
  });

  // The API's limits count characters; the model reads 8,192 tokens, and 4,000 Korean
  // characters (within the context field's limit) are about 11,000 of them.
  it('refuses an input longer than it reads as PROVIDER_INPUT_TOO_LONG, not to be retried', async () => {
    const config = loadConfig({
      AI_PROVIDER: 'embedded',
      DATA_DIR: dir,
      EMBEDDED_MODEL_THREADS: '1',
    });
    const { textGenerator, embeddedModel } = createProviders(config, {
      mediaStorage: createMediaStorage(config, testJwtSecret),
      mediaTools: null,
    });
    try {
      const refused = await textGenerator!
        .generateJson({
          what: 'sub-goal generation',
          systemInstruction: 'Answer with JSON only.',
          prompt: `Goal: sail\nContext: ${'한국어테스트'.repeat(667).slice(0, 4_000)}`,
          responseJsonSchema: z.toJSONSchema(z.object({ items: z.array(z.string()) })),
          maxAnswerChars: 2_000,
          signal: new AbortController().signal,
        })
        .then(
          () => assert.fail('expected the model to refuse'),
          (error: unknown) => error,
        );
      assert.ok(refused instanceof ProviderError, String(refused));
      assert.equal(refused.code, FailureCode.PROVIDER_INPUT_TOO_LONG, refused.message);
      assert.equal(refused.retryable, false);
      assert.match(refused.message, /longer than the model reads at once; shorten it/);
      assert.match(refused.message, /exceeds the available context size \(8192 tokens\)/);
    } finally {
      await embeddedModel?.stop();
    }
  });

  it('dies with the process that started it, even one killed with SIGKILL', async () => {
    const logFile = path.join(dir, 'orphan.log');
    const source = [
      `import { EmbeddedModel } from './src/providers/embedded-model.ts';`,
      `const model = new EmbeddedModel({ threads: 1, logFile: ${JSON.stringify(logFile)} });`,
      `console.log(JSON.stringify(await model.serving()));`,
      `setInterval(() => undefined, 1_000);`,
    ].join('\n');
    const parent = spawn(process.execPath, [...fromSource, '--input-type=module', '-e', source], {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    parent.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const { pid } = await eventually(
      async () => (output.includes('\n') ? (JSON.parse(output) as { pid: number }) : null),
      (serving) => serving !== null,
      { what: 'the server started by the child', timeoutMs: 60_000 },
    ).then((serving) => serving!);
    try {
      assert.equal(isAlive(pid), true);
      parent.kill('SIGKILL');
      await eventually(
        async () => isAlive(pid),
        (alive) => !alive,
        { what: 'the server gone with its parent', timeoutMs: 5_000, intervalMs: 50 },
      );
    } finally {
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  });
});
