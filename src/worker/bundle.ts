// `npm run build` step: prebuilds the workflow bundles production workers load, so they start
// without webpack and run exactly the code that was tested and replayed: one plain, one with
// the tracing interceptors (src/worker/workflow-bundles.ts).
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflows, workflowBundleFiles } from './workflow-bundles.js';
import { makeDirectory } from '../directories.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

for (const traced of [false, true]) {
  const output = path.join(root, 'dist', workflowBundleFiles[traced ? 'traced' : 'plain']);
  const code = await bundleWorkflows(traced);
  await makeDirectory(path.dirname(output));
  await writeFile(output, code);
  console.log(
    `workflow bundle written to ${path.relative(root, output)} (${(code.length / 1024).toFixed(0)} KiB)`,
  );
}
