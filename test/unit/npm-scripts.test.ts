// `npm run api` and `npm run worker` are what a deployment runs (docs/deployment.md): they start
// the compiled entry points, say so plainly when there are none, and hand the shell's process to
// node, so a signal npm forwards (systemd, docker, `timeout`) reaches the service itself.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fromSource, projectRoot } from '../support/processes.js';

/** Runs a package.json script's command as npm does (`sh -c`, its arguments appended) in `cwd`. */
function runScript(command: string, args: string[], cwd: string) {
  const child = spawn('sh', ['-c', [command, ...args].join(' ')], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  return new Promise<{ pid: number; code: number | null; stdout: string; stderr: string }>(
    (resolve) => child.once('close', (code) => resolve({ pid: child.pid!, code, stdout, stderr })),
  );
}

describe('the service scripts of package.json', () => {
  let scripts: Record<string, string>;
  let dir: string;
  before(async () => {
    ({ scripts } = JSON.parse(await readFile(path.join(projectRoot, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    });
    dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-scripts-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const entries = {
    api: 'dist/src/api/api-process.js',
    worker: 'dist/src/worker/worker-process.js',
  };

  it("runs every long-lived service as node itself, never as a child of npm's shell", () => {
    for (const script of ['start', 'api', 'worker', 'temporal:dev']) {
      const last = scripts[script]!.split(';').at(-1)!.trim();
      assert.match(last, /^([A-Z_]+=\S+ )*exec node /, script);
    }
  });

  for (const [script, entry] of Object.entries(entries)) {
    it(`npm run ${script} without a build says to build first, in one line`, async () => {
      const empty = await mkdtemp(path.join(dir, 'unbuilt-'));
      const { code, stdout, stderr } = await runScript(scripts[script]!, [], empty);
      assert.equal(code, 1);
      assert.equal(stdout, '');
      assert.equal(
        stderr,
        `npm run ${script} runs the compiled ${script === 'api' ? 'API' : 'worker'}: npm run build first\n`,
      );
    });

    it(`npm run ${script} is node itself, with the arguments given`, async () => {
      const built = await mkdtemp(path.join(dir, 'built-'));
      await mkdir(path.join(built, path.dirname(entry)), { recursive: true });
      await writeFile(
        path.join(built, entry),
        'console.log(JSON.stringify({ pid: process.pid, args: process.argv.slice(2) }));',
      );
      const { pid, code, stdout } = await runScript(scripts[script]!, ['--queues', 'media'], built);
      assert.equal(code, 0);
      assert.deepEqual(JSON.parse(stdout), { pid, args: ['--queues', 'media'] });
    });
  }

  it('npm run temporal:setup without TEMPORAL_ADDRESS names the variable, in one line', async () => {
    const { TEMPORAL_ADDRESS: _address, ...env } = process.env;
    const child = spawn(process.execPath, [...fromSource, 'temporal/cli.ts', 'setup'], {
      cwd: projectRoot,
      env: { ...env, DATA_DIR: dir },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const code = await new Promise((resolve) => child.once('close', resolve));
    assert.equal(
      stderr,
      'Invalid configuration:\n  TEMPORAL_ADDRESS: required for npm run temporal:setup, the cluster whose namespace it prepares\n',
    );
    assert.equal(code, 1);
  });
});
