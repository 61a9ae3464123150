// The fault-injection suite's report: one row per scenario. Each test file records its rows
// (printed at once, and saved as JSON under FAULT_REPORT_DIR when `npm run faults` set it);
// `npm run faults` prints them all as one table at the end and writes them to one file.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** What one fault scenario did to its jobs. */
export interface FaultRow {
  scenario: string;
  /** The fault as injected, in a few words. */
  fault: string;
  submitted: number;
  /** Jobs that completed, as they should have. */
  completed: number;
  /** Jobs meant to fail (a safety block, say) that failed with the expected code. */
  failedAsExpected: number;
  /** Jobs not in their expected final state in the API's view and in Temporal: must be 0. */
  lost: number;
  /** Paid provider calls beyond one per job attempt (Veo submissions, model answers): must be 0. */
  duplicateGenerations: number;
  /** How long the fault lasted: from injection to the process back / the path restored. */
  faultMs: number;
  /** From the end of the fault until every job was final. */
  recoveryMs: number;
  /** What else the scenario observed (activities killed in, poll answers seen…). */
  notes: string[];
}

function fileName(scenario: string): string {
  return `${scenario.toLowerCase().replace(/[^a-z0-9]+/g, '-')}.json`;
}

/** Prints the row and, when FAULT_REPORT_DIR is set, saves it there for the final table. */
export async function recordFaultRow(row: FaultRow): Promise<void> {
  console.log(`fault report: ${JSON.stringify(row)}`);
  const dir = process.env['FAULT_REPORT_DIR'];
  if (!dir) return;
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, fileName(row.scenario)), `${JSON.stringify(row, null, 2)}\n`);
}

/** The rows saved under `dir`, in scenario order. */
export async function readFaultRows(dir: string): Promise<FaultRow[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const rows = await Promise.all(
    names
      .filter((name) => name.endsWith('.json'))
      .map(async (name) => JSON.parse(await readFile(path.join(dir, name), 'utf8')) as FaultRow),
  );
  return rows.sort((a, b) => a.scenario.localeCompare(b.scenario));
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The rows as a plain-text table, notes under it. */
export function formatFaultTable(rows: FaultRow[]): string {
  const header = [
    'scenario',
    'submitted',
    'completed',
    'failed as expected',
    'lost',
    'duplicate generations',
    'fault',
    'recovery',
  ];
  const cells = rows.map((row) => [
    row.scenario,
    String(row.submitted),
    String(row.completed),
    String(row.failedAsExpected),
    String(row.lost),
    String(row.duplicateGenerations),
    seconds(row.faultMs),
    seconds(row.recoveryMs),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((line) => line[column]!.length)),
  );
  const line = (values: string[]) =>
    `| ${values.map((value, column) => (column === 0 ? value.padEnd(widths[column]!) : value.padStart(widths[column]!))).join(' | ')} |`;
  const rule = `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`;
  const notes = rows.flatMap((row) => [
    '',
    `${row.scenario}: ${row.fault}`,
    ...row.notes.map((note) => `  - ${note}`),
  ]);
  return [line(header), rule, ...cells.map(line), ...notes].join('\n');
}
