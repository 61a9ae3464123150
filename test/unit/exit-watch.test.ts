import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { fromSource } from '../support/processes.js';

const run = promisify(execFile);
const watch = fileURLToPath(new URL('../support/exit-watch.ts', import.meta.url));
const fixture = (name: string) =>
  fileURLToPath(new URL(`../fixtures/exit-watch/${name}`, import.meta.url));

// A runner of its own, not a file of this one (which NODE_TEST_CONTEXT would make it).
const runnerEnv = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => name !== 'NODE_TEST_CONTEXT'),
);

/** `node --test` on one file, with the watch preloaded as test/run.ts does. */
async function runFile(name: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      [...fromSource, '--import', watch, '--test', fixture(name)],
      { env: { ...runnerEnv, TEST_EXIT_GRACE_MS: '1000' }, timeout: 60_000 },
    );
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: failed.stdout + failed.stderr };
  }
}

describe('a test file held open after its tests', () => {
  it('fails once the grace has passed, naming what holds it', async () => {
    const { code, output } = await runFile('held-open.ts');
    assert.equal(code, 1, output);
    assert.match(output, /✔ passes and leaves an interval running/);
    assert.match(output, /still running 1 s after its tests ended, held open by .*Timeout/);
  });

  it('passes when it closes what it opened', async () => {
    const { code, output } = await runFile('closes.ts');
    assert.equal(code, 0, output);
    assert.doesNotMatch(output, /still running/);
  });
});
