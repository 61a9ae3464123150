// docs/operations.md says what each metric means and what to do when each alert fires; both
// lists are checked against what the code exports and what the rules define, both ways.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { processMetrics } from '../../src/metrics/metrics.js';
import { createSharedStateMetrics } from '../../src/metrics/shared-state.js';
import { readinessCheckSchema } from '../../src/api/routes/health.js';
import { readDocPages, repositoryRoot } from '../support/docs.js';
import { testLogger } from '../support/logs.js';

/** The text of one `## ` section of docs/operations.md. */
async function operationsSection(title: string): Promise<string> {
  const page = await readFile(path.join(repositoryRoot, 'docs/operations.md'), 'utf8');
  const start = page.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `docs/operations.md has no section "${title}"`);
  const end = page.indexOf('\n## ', start + 1);
  return page.slice(start, end < 0 ? undefined : end);
}

describe('observability docs', () => {
  it('name only fields /readyz gives each check (it never says which ffmpeg: it asks no token)', async () => {
    const fields = Object.keys(readinessCheckSchema.shape);
    const named = (await readDocPages()).flatMap(({ file, text }) =>
      [...text.matchAll(/\bchecks\.\w+\.(\w+)/g)]
        .filter((match) => !fields.includes(match[1]!))
        .map((match) => `${file}: ${match[0]}`),
    );
    assert.deepEqual(named, []);
  });

  it('describe every metric of the service, and no other', async () => {
    // The shared-state gauges are registered when made; nothing is read until a scrape.
    const sharedState = createSharedStateMetrics({
      db: {} as never,
      client: {} as never,
      taskQueue: 'vlogflow',
      logger: testLogger(),
    });
    const exported = [
      ...(await processMetrics.getMetricsAsJSON()),
      ...(await sharedState.registry.getMetricsAsJSON()),
    ]
      .map((metric) => metric.name)
      .filter((name) => name.startsWith('vlogflow_'))
      .sort();
    const section = await operationsSection('Metrics');
    const documented = [...new Set(section.match(/\bvlogflow_[a-z_]+\b/g) ?? [])].sort();
    assert.deepEqual(documented, exported);
    for (const name of exported)
      assert.match(section, new RegExp(`^\\| \`${name}[{\`]`, 'm'), `${name} has no table row`);
  });

  it('say what each alert means and what to do when it fires, for every rule and no other', async () => {
    const rules = await readFile(path.join(repositoryRoot, 'ops/prometheus/alerts.yml'), 'utf8');
    const alerts = [...rules.matchAll(/^\s+- alert: (\S+)$/gm)].map((match) => match[1]!).sort();
    const section = await operationsSection('Alerts');
    const inTable = [...section.matchAll(/^\| `(Vlogflow\w+)`/gm)].map((match) => match[1]!);
    const withAction = [...section.matchAll(/^- \*\*`(Vlogflow\w+)`\*\*:/gm)].map(
      (match) => match[1]!,
    );
    assert.deepEqual([...inTable].sort(), alerts, 'the table of alerts');
    assert.deepEqual([...withAction].sort(), alerts, 'what to do for each');
  });
});
