// A worker process for the bare baseline workflows (scripts/bench/bare-workflows.ts):
// `node --import ./src/typescript-hooks.ts scripts/bench/bare-worker.ts <address> <namespace> <taskQueue>`. It runs
// as its own process, as vlogflow's worker does, so both sides pay the same hops.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { bareActivities } from './bare-activities.js';

const [address, namespace, taskQueue] = process.argv.slice(2);
if (!address || !namespace || !taskQueue) {
  console.error('usage: bare-worker.ts <address> <namespace> <taskQueue>');
  process.exit(2);
}
Runtime.install({ logger: new DefaultLogger('WARN') });
const connection = await NativeConnection.connect({ address });
const worker = await Worker.create({
  connection,
  namespace,
  taskQueue,
  activities: bareActivities,
  workflowsPath: path.join(path.dirname(fileURLToPath(import.meta.url)), 'bare-workflows.ts'),
});
const stop = () => worker.shutdown();
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
console.log('bare worker started');
await worker.run();
await connection.close();
