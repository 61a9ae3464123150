// `npm run replay` is what an operator runs before a deploy: it must replay what it is given,
// and say plainly, with a non-zero exit, when there is nothing it can replay.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { testEnv } from '../support/env.js';
import { eventually } from '../support/eventually.js';
import { testTemporal, uniqueTaskQueue } from '../support/temporal.js';
import { freePort } from '../support/ports.js';
import { fromSource, projectRoot, runNpmScript } from '../support/processes.js';

const histories = path.join(projectRoot, 'test/histories');
const temporal = {
  TEMPORAL_ADDRESS: testEnv.temporalAddress,
  TEMPORAL_NAMESPACE: testEnv.temporalNamespace,
};

describe('npm run replay', { timeout: 180_000 }, () => {
  it('replays a directory of recorded histories and exits 0', async () => {
    const recorded = readdirSync(histories, { recursive: true, encoding: 'utf8' }).filter((entry) =>
      entry.endsWith('.json'),
    ).length;
    const { code, output } = await runNpmScript('replay', [histories], temporal);
    assert.match(output, new RegExp(`^${recorded} histories replayed, 0 failed$`, 'm'), output);
    assert.equal(code, 0, output);
  });

  /** The CLI's exit code and what it wrote to stdout and to stderr, apart. */
  function replayCli(args: string[], env: Record<string, string> = temporal) {
    return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [...fromSource, 'src/replay/replay-cli.ts', ...args],
        { cwd: projectRoot, env: { ...process.env, ...env } },
        (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      );
    });
  }

  let scratch: string;
  before(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-replay-cli-'));
  });
  after(() => rm(scratch, { recursive: true, force: true }));

  it('prints its usage on stdout for --help and exits 0', async () => {
    const { code, stdout, stderr } = await replayCli(['--help']);
    assert.match(stdout, /^usage: npm run replay -- /);
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });

  it('refuses arguments it cannot take with exit code 2, naming the flag, then the usage', async () => {
    const cases = [
      { args: [], problem: /^no target given$/ },
      ...['0', '0x10', '1e1', '', 'abc', '=-1'].map((limit) => ({
        args: limit.startsWith('=')
          ? [`--limit${limit}`, histories]
          : ['--limit', limit, histories],
        problem: /^--limit: expected a whole number of at least 1, not ".*"$/,
      })),
      { args: ['--limit', '-1', histories], problem: /^Option '--limit' argument is ambiguous\./ },
      { args: ['--bogus', histories], problem: /^Unknown option '--bogus'/ },
      {
        args: ['--limit', '5', '--limit', '6', histories],
        problem: /^--limit: given more than once$/,
      },
    ];
    for (const testCase of cases) {
      const { code, stderr } = await replayCli(testCase.args);
      const [problem, usage] = stderr.split('\n');
      assert.match(problem ?? '', testCase.problem, stderr);
      assert.match(usage ?? '', /^usage: npm run replay -- /, stderr);
      assert.equal(code, 2, `${testCase.args.join(' ')}: ${stderr}`);
    }
  });

  it('exits 1 with one line saying why when there is nothing it can replay', async () => {
    const malformed = path.join(scratch, 'malformed.json');
    await writeFile(malformed, '{"events": [');
    const empty = path.join(scratch, 'empty.json');
    await writeFile(empty, '{"events": []}');
    const cases = [
      { args: ['missing-history.json'], message: /^No such history file: missing-history\.json$/ },
      { args: [malformed], message: /^.*malformed\.json is not a history: / },
      // It printed a TypeError's stack.
      {
        args: [empty],
        message: /^.*empty\.json is not a history: its first event is not a workflow's start/,
      },
      {
        args: ['vlog-never-started'],
        env: { ...temporal, TEMPORAL_NAMESPACE: 'no-such-namespace' },
        message: /^Namespace not found: 'no-such-namespace'$/,
      },
      {
        args: ['--bundle', path.join(scratch, 'missing-bundle.js'), histories],
        message: /^No such workflow bundle: .*missing-bundle\.js$/,
      },
      {
        args: ['--bundle', malformed, histories],
        message: /^.*malformed\.json is not a workflow bundle: build one with npm run build/,
      },
      {
        args: ['vlog-never-started'],
        message: new RegExp(
          `^No workflow with id vlog-never-started in namespace ${testEnv.temporalNamespace}$`,
        ),
      },
      {
        args: ['JobKind = ('],
        message: /^Temporal refused the visibility query 'JobKind = \(': .*malformed/,
      },
      {
        args: ['vlog-never-started'],
        env: { ...temporal, TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` },
        message: /^Cannot reach Temporal at 127\.0\.0\.1:\d+: /,
      },
    ];
    for (const testCase of cases) {
      const { code, stdout, stderr } = await replayCli(testCase.args, testCase.env);
      assert.match(stderr, /^[^\n]*\n$/, `one line, no stack: ${stderr}`);
      assert.match(stderr.trimEnd(), testCase.message, stderr);
      assert.equal(stdout, '');
      assert.equal(code, 1, `${testCase.args.join(' ')}: ${stderr}`);
    }
  });

  // Temporal lists the newest runs first: a gate stopped at --limit without a word passed on
  // the newest while the oldest, started on the oldest code, went unchecked.
  it('exits 1 naming the limit when more runs match a query than it replays', async () => {
    const prefix = `replay-limit-${randomUUID()}`;
    const access = testTemporal();
    try {
      for (const n of [1, 2, 3]) {
        await access.client.workflow.start('probeJob', {
          taskQueue: uniqueTaskQueue('nobody-polls'),
          workflowId: `${prefix}-${n}`,
          args: [],
        });
      }
      const query = `WorkflowId STARTS_WITH "${prefix}"`;
      const matching = async () => {
        let count = 0;
        for await (const _run of access.client.workflow.list({ query })) count += 1;
        return count;
      };
      await eventually(matching, (count) => count === 3, { what: 'the three runs listed' });
      const { code, stdout, stderr } = await replayCli(['--limit', '2', query]);
      assert.match(stdout, /^2 histories replayed, \d+ failed$/m, stdout);
      assert.equal(
        stderr,
        `More than 2 runs match '${query}': only the 2 newest were read, the older ones not; raise --limit to take them all\n`,
      );
      assert.equal(code, 1);
    } finally {
      for (const n of [1, 2, 3]) {
        await access.client.workflow
          .getHandle(`${prefix}-${n}`)
          .terminate('test over')
          .catch(() => undefined);
      }
      await access.close();
    }
  });

  // The deploy check replays 'ExecutionStatus = "Running"': when nothing matches, its exit 1
  // must say so, not only "0 histories replayed, 0 failed".
  it('exits 1 saying no run matched when a query finds none', async () => {
    const query = 'WorkflowId = "vlog-never-started"';
    const { code, stdout, stderr } = await replayCli([query]);
    assert.equal(stdout, '0 histories replayed, 0 failed\n');
    assert.equal(stderr, `Nothing to replay: no run matched ${query}\n`);
    assert.equal(code, 1);
  });
});

// replay.md gives `npm run histories:record -- --from-server` for saving production histories:
// an operator's command, which must answer a shell as `npm run replay` does.
describe('npm run histories:record -- --from-server', { timeout: 180_000 }, () => {
  function recordCli(args: string[], env: Record<string, string> = temporal) {
    return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [...fromSource, 'test/replay/record.ts', ...args],
        { cwd: projectRoot, env: { ...process.env, ...env } },
        (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      );
    });
  }

  it('refuses arguments it cannot take with exit code 2, naming the flag, then the usage', async () => {
    const query = 'JobKind = "probe"';
    const cases = [
      {
        args: ['--from-server', query, '--out', 'out', '--limit', 'abc'],
        problem: /^--limit: expected a whole number of at least 1, not "abc"$/,
      },
      { args: ['--from-server', query], problem: /^--from-server needs --out / },
      {
        args: ['--from-server', query, '--out', 'saved.json'],
        problem: /^--out: must be a directory for a query/,
      },
      {
        args: ['--form-server', query, '--out', 'out'],
        problem: /^Unknown option '--form-server'/,
      },
      // Without --from-server it would re-record every committed history, --out ignored.
      { args: ['--out', 'out'], problem: /^--out and --limit go with --from-server$/ },
      { args: ['--limit', '5'], problem: /^--out and --limit go with --from-server$/ },
      {
        args: ['--from-server', '', '--out', 'out'],
        problem: /^--from-server: expected a workflow id or a visibility query$/,
      },
      { args: ['probeJob/no-such-scenario'], problem: /^No scenario named probeJob\/no-such/ },
      {
        args: ['--from-server', 'a', '--from-server', 'b', '--out', 'out'],
        problem: /^--from-server: given more than once$/,
      },
    ];
    for (const testCase of cases) {
      const { code, stderr } = await recordCli(testCase.args);
      const [problem, usage] = stderr.split('\n');
      assert.match(problem ?? '', testCase.problem, stderr);
      assert.match(usage ?? '', /^usage: npm run histories:record -- /, stderr);
      assert.equal(code, 2, `${testCase.args.join(' ')}: ${stderr}`);
    }
  });

  it('exits 1 with one line when Temporal cannot be reached', async () => {
    const { code, stderr } = await recordCli(
      ['--from-server', 'vlog-never-started', '--out', 'out.json'],
      { ...temporal, TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` },
    );
    assert.match(stderr, /^Cannot reach Temporal at 127\.0\.0\.1:\d+: [^\n]*\n$/, stderr);
    assert.equal(code, 1);
  });
});
