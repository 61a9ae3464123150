// A node:test reporter run beside `spec` by test/run.ts: once every file has finished it prints
// the slowest files by wall time, so a suite that grows past its time budget says where, and
// writes every file's time to .local/test-logs/file-durations.json to compare runs.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

interface TestEvent {
  type: string;
  data: { name: string; file?: string; nesting: number; details?: { duration_ms?: number } };
}

const shown = 15;

export default async function* fileDurations(source: AsyncIterable<TestEvent>) {
  const durations = new Map<string, number>();
  for await (const { type, data } of source) {
    // The runner reports each file as a test of its own, named by the file's path.
    if (type !== 'test:complete' || data.nesting !== 0 || data.file === undefined) continue;
    if (path.resolve(data.name) !== data.file) continue;
    durations.set(path.relative(process.cwd(), data.file), data.details?.duration_ms ?? 0);
  }
  const logs = path.resolve('.local/test-logs');
  await mkdir(logs, { recursive: true });
  const byFile = Object.fromEntries([...durations].sort(([a], [b]) => a.localeCompare(b)));
  await writeFile(path.join(logs, 'file-durations.json'), `${JSON.stringify(byFile, null, 2)}\n`);
  const slowest = [...durations].sort(([, a], [, b]) => b - a).slice(0, shown);
  const total = [...durations.values()].reduce((sum, ms) => sum + ms, 0);
  yield `\nslowest test files (wall time; ${durations.size} files, ${(total / 1000).toFixed(0)} s in all):\n`;
  for (const [file, ms] of slowest) yield `  ${(ms / 1000).toFixed(1).padStart(7)} s  ${file}\n`;
}
