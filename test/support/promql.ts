// The metric names a PromQL expression reads, and the expressions of the alert rules and the
// dashboard: what tests check against the metrics the service really exports.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { repositoryRoot } from './docs.js';

const keywords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** Metric names in `expr`: identifiers that are not functions, keywords or labels. */
export function metricNamesIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = [...bare.matchAll(/(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()/g)]
    .map((match) => match[1]!)
    .filter((name) => !keywords.has(name.toLowerCase()));
  return [...new Set(names)];
}

/** Every `expr` of ops/prometheus/alerts.yml, one-line or block (`expr: |`). */
export async function alertRuleExpressions(): Promise<{ alert: string; expr: string }[]> {
  const lines = (
    await readFile(path.join(repositoryRoot, 'ops/prometheus/alerts.yml'), 'utf8')
  ).split('\n');
  const found: { alert: string; expr: string }[] = [];
  let alert = '';
  lines.forEach((line, index) => {
    alert = /^\s+- alert: (\S+)/.exec(line)?.[1] ?? alert;
    const expr = /^(\s*)expr: (.*)$/.exec(line);
    if (!expr) return;
    if (expr[2] !== '|') {
      found.push({ alert, expr: expr[2]! });
      return;
    }
    const block: string[] = [];
    for (const next of lines.slice(index + 1)) {
      if (next.trim() !== '' && next.search(/\S/) <= expr[1]!.length) break;
      block.push(next.trim());
    }
    found.push({ alert, expr: block.join(' ').trim() });
  });
  return found;
}

interface DashboardPanel {
  title: string;
  type: string;
  targets?: { expr: string }[];
}

/** Every query of ops/grafana/vlogflow.json, with its panel's title. */
export async function dashboardExpressions(): Promise<{ panel: string; expr: string }[]> {
  const dashboard = JSON.parse(
    await readFile(path.join(repositoryRoot, 'ops/grafana/vlogflow.json'), 'utf8'),
  ) as { panels: DashboardPanel[] };
  return dashboard.panels
    .filter((panel) => panel.type !== 'row')
    .flatMap((panel) => {
      if (!panel.targets?.length) throw new Error(`dashboard panel "${panel.title}" has no query`);
      return panel.targets.map(({ expr }) => ({ panel: panel.title, expr }));
    });
}

/** A dashboard query with Grafana's interval variables replaced, as Prometheus receives it. */
export function asSentByGrafana(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '1h');
}
