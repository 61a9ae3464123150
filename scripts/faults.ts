// `npm run faults`: runs only the fault-injection suite (test/faults, one file at a time unless
// TEST_CONCURRENCY says otherwise), then prints every scenario's report row as one table and
// writes them to FAULT_REPORT_PATH (default .local/reports/faults.json).
// Arguments go to the test runner: `npm run faults -- --test-name-pattern=PostgreSQL`.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatFaultTable, readFaultRows } from '../test/support/fault-report.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const reportPath = path.resolve(
  root,
  process.env['FAULT_REPORT_PATH'] ?? '.local/reports/faults.json',
);
const rowsDir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-faults-'));

const started = Date.now();
const child = spawn(
  process.execPath,
  ['--import', './src/typescript-hooks.ts', 'test/run.ts', 'test/faults', ...process.argv.slice(2)],
  {
    cwd: root,
    stdio: 'inherit',
    env: {
      ...process.env,
      TEST_CONCURRENCY: process.env['TEST_CONCURRENCY'] ?? '1',
      FAULT_REPORT_DIR: rowsDir,
    },
  },
);
const forward = (signal: NodeJS.Signals) => child.kill(signal);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
const exitCode = await new Promise<number>((resolve) =>
  child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))),
);

const rows = await readFaultRows(rowsDir);
await rm(rowsDir, { recursive: true, force: true });
await mkdir(path.dirname(reportPath), { recursive: true });
await writeFile(
  reportPath,
  `${JSON.stringify({ finishedAt: new Date().toISOString(), exitCode, wallMs: Date.now() - started, rows }, null, 2)}\n`,
);
console.log(
  `\nFault injection report (${rows.length} scenarios, ${((Date.now() - started) / 1000).toFixed(0)} s, tests ${exitCode === 0 ? 'passed' : 'FAILED'}):\n`,
);
console.log(rows.length > 0 ? formatFaultTable(rows) : '(no scenario recorded a row)');
console.log(`\nWritten to ${reportPath}`);
process.exit(exitCode);
