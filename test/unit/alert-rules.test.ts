// The alert rules (ops/prometheus/alerts.yml) are checked and unit-tested by Prometheus's own
// promtool, and every alert has a test in which it fires.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { testEnv } from '../support/env.js';
import { repositoryRoot } from '../support/docs.js';

const rulesDir = path.join(repositoryRoot, 'ops/prometheus');

async function promtool(...args: string[]): Promise<string> {
  const { stdout, stderr } = await promisify(execFile)(testEnv.promtoolPath, args, {
    cwd: rulesDir,
  });
  return stdout + stderr;
}

describe('alert rules', () => {
  it('are valid rules', async () => {
    assert.match(await promtool('check', 'rules', 'alerts.yml'), /SUCCESS: \d+ rules found/);
  });

  it('pass their unit tests (promtool test rules)', async () => {
    assert.match(await promtool('test', 'rules', 'alerts.test.yml'), /SUCCESS/);
  });

  it('each fire in at least one test', async () => {
    const rules = await readFile(path.join(rulesDir, 'alerts.yml'), 'utf8');
    const tests = await readFile(path.join(rulesDir, 'alerts.test.yml'), 'utf8');
    const alerts = [...rules.matchAll(/^\s+- alert: (\S+)$/gm)].map((match) => match[1]!);
    assert.ok(alerts.length >= 8, `only ${alerts.length} alerts found`);
    const firing = new Set(
      tests
        .split(/^\s+- eval_time:/m)
        .filter((block) => /exp_alerts:\s*\n\s+- exp_labels:/.test(block))
        .map((block) => /alertname: (\S+)/.exec(block)?.[1]),
    );
    assert.deepEqual(
      alerts.filter((alert) => !firing.has(alert)),
      [],
      'alerts no test shows firing',
    );
  });
});
