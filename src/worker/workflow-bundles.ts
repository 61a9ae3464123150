import { createHash } from 'node:crypto';
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  bundleWorkflowCode,
  DefaultLogger,
  type Logger as TemporalLogger,
  type WorkflowBundle,
  type WorkflowBundlePath,
} from '@temporalio/worker';
import { tracingWorkflowModules } from '../tracing/index.js';
import { makeDirectory } from '../directories.js';

/**
 * The prebuilt workflow bundles under `dist/`: a worker loads the traced one when tracing is
 * on (its workflows run Temporal's OpenTelemetry interceptors) and the plain one otherwise, in
 * which nothing of tracing is bundled.
 */
export const workflowBundleFiles = {
  plain: 'workflow-bundle.js',
  traced: 'workflow-bundle-traced.js',
} as const;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const workflowsPath = path.join(root, 'src/workflows/index.ts');
const cacheDir = path.join(root, '.local/workflow-bundles');
/** Bundles kept for trees checked out before (a branch switched back to loads its own). */
const cachedBundlesKept = 8;

/** Bundles `src/workflows` as `npm run build` does, with the tracing interceptors when `traced`. */
export async function bundleWorkflows(traced: boolean, logger?: TemporalLogger): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    workflowInterceptorModules: traced ? tracingWorkflowModules() : [],
    ...(logger && { logger }),
  });
  return code;
}

/**
 * The bundle a worker running from source (`npm start`, tests, benchmarks) loads, made as
 * `npm run build` makes it. Webpack spends seconds of CPU on each, so it is kept in
 * `.local/workflow-bundles/` under a hash of every source file and the locked dependencies: a
 * restart, and every other process of this tree, loads it at once, and any change to what it
 * is made from makes a new one. Webpack's report of each module goes to `logger`'s info.
 */
export async function sourceWorkflowBundle(
  traced: boolean,
  logger: TemporalLogger = new DefaultLogger('WARN'),
): Promise<WorkflowBundlePath | WorkflowBundle> {
  const hash = await sourceHash(traced);
  const file = path.join(cacheDir, `${hash}.js`);
  if (await exists(file)) return { codePath: file };
  const code = await bundleWorkflows(traced, logger);
  // A file saved while webpack read the tree may be in the bundle or not: such a bundle is
  // used this once and kept under neither tree's hash.
  if ((await sourceHash(traced)) !== hash) return { code };
  await makeDirectory(cacheDir);
  // Processes of one tree may make the same bundle at once: each renames a whole file in.
  const partial = `${file}.${process.pid}.partial`;
  await writeFile(partial, code);
  await rename(partial, file);
  await pruneCache();
  return { codePath: file };
}

/**
 * A hash of what a bundle of the tree at `root` is made from: every file under `src/`, the
 * lockfile, and whether it is traced.
 */
export async function sourceHash(traced: boolean, treeRoot = root): Promise<string> {
  const hash = createHash('sha256').update(traced ? 'traced\n' : 'plain\n');
  const sources = (await readdir(path.join(treeRoot, 'src'), { recursive: true })).sort();
  for (const name of [...sources.map((source) => path.join('src', source)), 'package-lock.json']) {
    const file = path.join(treeRoot, name);
    if (!(await stat(file)).isFile()) continue;
    const content = await readFile(file);
    hash.update(`${name}\0${content.length}\0`).update(content);
  }
  return hash.digest('hex').slice(0, 32);
}

async function pruneCache(): Promise<void> {
  const bundles = await Promise.all(
    (await readdir(cacheDir))
      .filter((name) => name.endsWith('.js'))
      .map(async (name) => {
        const file = path.join(cacheDir, name);
        return { file, at: (await stat(file).catch(() => null))?.mtimeMs ?? 0 };
      }),
  );
  const stale = bundles.sort((a, b) => b.at - a.at).slice(cachedBundlesKept);
  await Promise.all(stale.map(({ file }) => rm(file, { force: true })));
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
