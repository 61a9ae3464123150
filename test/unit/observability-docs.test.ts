// docs/operations.md says what each metric means and what to do when each alert fires; both
// lists are checked against what the code exports and what the rules define, both ways. The
// Temporal CLI commands the docs give operators must reach the service's namespace as written.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { apiMetrics, processMetrics } from '../../src/metrics/metrics.js';
import { createSharedStateMetrics } from '../../src/metrics/shared-state.js';
import { readinessCheckSchema } from '../../src/api/routes/health.js';
import { readDocPages, repositoryRoot } from '../support/docs.js';
import { loadConfig } from '../../src/config.js';
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

  it('describe every metric of the service with its labels, and no other', async () => {
    // The shared-state gauges are registered when made; nothing is read until a scrape.
    const sharedState = createSharedStateMetrics({
      db: {} as never,
      queues: {} as never,
      logger: testLogger(),
    });
    const exported = [
      ...(await processMetrics.getMetricsAsJSON()),
      ...(await apiMetrics.getMetricsAsJSON()),
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
    // A row names its labels as `name{a,b}`, which alert rules and dashboards are written from;
    // prom-client keeps each metric's label names on the metric itself.
    for (const metric of [
      ...processMetrics.getMetricsAsArray(),
      ...apiMetrics.getMetricsAsArray(),
      ...sharedState.registry.getMetricsAsArray(),
    ].filter(({ name }) => name.startsWith('vlogflow_'))) {
      const row = new RegExp(`^\\| \`${metric.name}(?:\\{([\\w,]*)\\})?\``, 'm').exec(section);
      const labels = (metric as unknown as { labelNames: readonly string[] }).labelNames;
      assert.equal(row?.[1] ?? '', labels.join(','), `the labels of ${metric.name}`);
    }
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

  it('give every Temporal CLI command that names a workflow, schedule or queue its namespace', async () => {
    // The CLI's namespace is `default` unless --namespace (or TEMPORAL_NAMESPACE) says otherwise,
    // so a command without it answers "not found" for a job that exists.
    const commands = (await readDocPages()).flatMap(({ file, text }) => {
      const inline = [...text.matchAll(/`(temporal [^`]+)`/g)].map((match) => match[1]!);
      const fenced = [...text.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)].flatMap((block) =>
        block[1]!
          .replace(/\\\n/g, ' ')
          .split('\n')
          .filter((line) => line.startsWith('temporal ')),
      );
      return [...inline, ...fenced].map((command) => ({
        file,
        command: command.replace(/\s+/g, ' '),
      }));
    });
    const addressing = commands.filter(
      ({ command }) =>
        /\s(-w|--workflow-id|--schedule-id|--task-queue|-q|--query)[\s=]/.test(command) ||
        /^temporal (workflow|schedule) list\b/.test(command),
    );
    assert.ok(addressing.length >= 5, `only ${addressing.length} commands found`);
    const namespace = loadConfig({}).TEMPORAL_NAMESPACE;
    assert.deepEqual(
      addressing
        .filter(({ command }) => !new RegExp(`\\s(--namespace|-n) ${namespace}\\b`).test(command))
        .map(({ file, command }) => `${file}: ${command}`),
      [],
    );
  });
});
