import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { StartupError } from './config.js';

/** Whether `error` says a directory exists at `dir` (a file there is not one). */
async function existsAsDirectory(error: unknown, dir: string): Promise<boolean> {
  if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return false;
  return (await stat(dir)).isDirectory();
}

/**
 * `mkdir -p`: makes `dir` and any parent it lacks. Node's own `mkdir(dir, { recursive: true })`
 * never returns where a parent exists but refuses children (`/proc/x`, `/sys/x`): it retries the
 * ENOENT for ever, so a service given such a DATA_DIR hung without a word. Here each level is
 * made once, and the first refusal is the error.
 */
export async function makeDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir);
    return;
  } catch (error) {
    if (await existsAsDirectory(error, dir)) return;
    const parent = path.dirname(dir);
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === dir) throw error;
  }
  await makeDirectory(path.dirname(dir));
  try {
    await mkdir(dir);
  } catch (error) {
    if (!(await existsAsDirectory(error, dir))) throw error;
  }
}

/**
 * Makes DATA_DIR before anything is kept in it (the dev server's database and log come first):
 * a folder that cannot be made is one line naming the setting, not a stack from whichever
 * component reached it first.
 */
export async function makeDataDir(dataDir: string): Promise<void> {
  await makeDirectory(dataDir).catch((error: unknown) => {
    throw new StartupError('DATA_DIR', `cannot make the folder ${dataDir}`, error);
  });
}
