// `npm run build` step: prebuilds the workflow bundle production workers load, so they start
// without webpack and run exactly the code that was tested and replayed.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const output = path.join(root, 'dist/workflow-bundle.js');

const { code } = await bundleWorkflowCode({
  workflowsPath: path.join(root, 'src/workflows/index.ts'),
});
await mkdir(path.dirname(output), { recursive: true });
await writeFile(output, code);
console.log(
  `workflow bundle written to ${path.relative(root, output)} (${(code.length / 1024).toFixed(0)} KiB)`,
);
