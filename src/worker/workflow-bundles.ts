import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, type Logger as TemporalLogger } from '@temporalio/worker';
import { tracingWorkflowModules } from '../tracing/index.js';

/**
 * The prebuilt workflow bundles under `dist/`: a worker loads the traced one when tracing is
 * on (its workflows run Temporal's OpenTelemetry interceptors) and the plain one otherwise, in
 * which nothing of tracing is bundled.
 */
export const workflowBundleFiles = {
  plain: 'workflow-bundle.js',
  traced: 'workflow-bundle-traced.js',
} as const;

const workflowsPath = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../workflows/index.ts',
);

/** Bundles `src/workflows` as `npm run build` does, with the tracing interceptors when `traced`. */
export async function bundleWorkflows(traced: boolean, logger?: TemporalLogger): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    workflowInterceptorModules: traced ? tracingWorkflowModules() : [],
    ...(logger && { logger }),
  });
  return code;
}
