import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from './eventually.js';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The node flags that run this tree's TypeScript from source, as its npm scripts do. */
export const fromSource = ['--import', path.join(projectRoot, 'src/typescript-hooks.ts')];

export interface ServiceProcess {
  child: ChildProcess;
  /** Every line the process printed so far, stdout and stderr together. */
  output: string[];
  /** Lines that parsed as JSON log records. */
  logs(): Record<string, unknown>[];
  waitForLine(match: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends `signal` to the process group (as a terminal's Ctrl-C does) and returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/**
 * The production API or worker entry point as its own process, once it says it is ready. It is
 * added to `running` first, so a test's cleanup stops it even if it never gets ready.
 */
export async function startReadyService(
  entry: 'api' | 'worker',
  env: Record<string, string>,
  running: ServiceProcess[],
): Promise<ServiceProcess> {
  const service = startService(`src/${entry}/${entry}-process.ts`, env);
  running.push(service);
  await service.waitForLine(entry === 'api' ? /Server listening/ : /worker started/);
  return service;
}

/**
 * Runs an entry point of the project as its own process, the way npm scripts do: by default a
 * TypeScript one from source; `nodeArgs` replace that (a compiled entry runs with the node flags
 * of its npm script).
 */
export function startService(
  entry: string,
  env: Record<string, string>,
  args: string[] = [],
  nodeArgs: string[] = fromSource,
): ServiceProcess {
  const child = spawn(process.execPath, [...nodeArgs, entry, ...args], {
    cwd: projectRoot,
    // A worker's metrics on any free port: tests run several workers side by side.
    env: { ...process.env, LOG_LEVEL: 'info', METRICS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const output: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream?.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      output.push(...lines);
    });
  }
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  // Exited, and everything it printed read.
  let closed = false;
  child.once('close', () => (closed = true));
  return {
    child,
    output,
    exited,
    logs: () =>
      output.flatMap((line) => {
        if (!line.startsWith('{')) return [];
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
    // A deadline, not a wait: a whole stack bundling its workflows under coverage on two busy
    // cores has taken over a minute to start. One that exited fails at once, with its output.
    async waitForLine(match, timeoutMs = 180_000) {
      const line = await eventually(
        async () => output.find((each) => match.test(each)),
        (found) => found !== undefined || closed,
        { timeoutMs, what: `${entry} printing ${match}` },
      );
      if (line === undefined)
        throw new Error(`${entry} exited with ${child.exitCode}:\n${output.join('\n')}`);
      return line;
    },
    async stop(signal = 'SIGINT') {
      if (child.exitCode === null && child.signalCode === null && child.pid) {
        try {
          process.kill(-child.pid, signal);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
        }
      }
      return exited;
    },
  };
}

/** Whether a process with this pid still exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs an npm script to completion (with arguments and environment overrides); returns its exit code and output. */
export async function runNpmScript(
  script: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<{ code: number | null; output: string }> {
  const child = spawn('npm', ['run', '-s', script, '--', ...args], {
    cwd: projectRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, output };
}

/**
 * Processes (of this user) whose working directory is `dir` or under it, read from /proc: how
 * tests find the ffmpeg of one render. Linux only, like the rest of the process tests.
 */
export async function processesWorkingIn(
  dir: string,
): Promise<{ pid: number; command: string; args: string[] }[]> {
  const found: { pid: number; command: string; args: string[] }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = await readlink(`/proc/${entry}/cwd`);
      if (cwd !== dir && !cwd.startsWith(`${dir}/`)) continue;
      const [command = '', ...args] = (await readFile(`/proc/${entry}/cmdline`, 'utf8'))
        .replace(/\0$/, '')
        .split('\0');
      found.push({ pid: Number(entry), command, args });
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}

/**
 * Every process descended from `pid` (children, theirs, and so on), read from /proc: what a
 * stack has started, whatever process group each runs in. Linux only.
 */
export async function descendantsOf(pid: number): Promise<{ pid: number; command: string }[]> {
  const parents = new Map<number, { parent: number; command: string }>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const command = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replaceAll('\0', ' ');
      parents.set(Number(entry), { parent, command: command.trim() });
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  const found: { pid: number; command: string }[] = [];
  const ancestors = new Set([pid]);
  // Parents usually have lower pids, but pids wrap: repeat until nothing new turns up.
  for (let grew = true; grew;) {
    grew = false;
    for (const [child, { parent, command }] of parents) {
      if (ancestors.has(child) || !ancestors.has(parent)) continue;
      ancestors.add(child);
      found.push({ pid: child, command });
      grew = true;
    }
  }
  return found;
}
