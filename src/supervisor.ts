/**
 * Child processes that must not outlive this one. ffmpeg ignores SIGPIPE and the end of its
 * stdin, and the Temporal dev server runs in a process group of its own, so neither dies with a
 * parent killed by SIGKILL. Each runs under a small Node process holding a pipe from this one:
 * when that pipe closes (this process stopped the command, or died) it kills the command.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

/**
 * fd 0: the lifeline. fd 3: the command's pid once it runs, then how it ended (`exit <code>
 * <signal> <signal passed on>`, `-` for none). Signals an operator or the parent sends to the
 * supervisor are passed on, so a command can still be stopped gracefully.
 */
const supervisorSource = `
const { spawn } = require('node:child_process');
const { writeSync } = require('node:fs');
const { constants } = require('node:os');
const [command, ...args] = process.argv.slice(1);
const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
const kill = () => child.kill('SIGKILL');
let passedOn = null;
process.stdin.on('end', kill).on('error', kill).resume();
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'])
  process.on(signal, () => { passedOn = signal; child.kill(signal); });
child.on('spawn', () => { try { writeSync(3, child.pid + '\\n'); } catch { kill(); } });
child.on('error', (error) => { process.stderr.write(String(error) + '\\n'); process.exit(127); });
child.on('exit', (code, signal) => {
  const end = ['exit', code ?? '-', signal ?? '-', passedOn ?? '-'].join(' ');
  try { writeSync(3, end + '\\n'); } catch {}
  process.exit(code ?? 128 + (constants.signals[signal] ?? 0));
});
`;

/** How a supervised command ended. */
export interface CommandEnd {
  /** Its exit code; null when a signal killed it. */
  code: number | null;
  /** The signal that killed it. */
  signal: NodeJS.Signals | null;
  /**
   * The last signal the supervisor passed on to it: someone signalled the supervisor (its
   * caller stopping it, an operator). A command that catches the signal exits with a code.
   */
  passedOn: NodeJS.Signals | null;
}

export interface SupervisedCommand<Supervisor extends ChildProcess> {
  /** The supervisor process; its exit follows the command's, with the command's exit code. */
  supervisor: Supervisor;
  /** The command's own pid once it runs; rejects if it never does. */
  pid: Promise<number>;
  /**
   * How the command ended, once the supervisor has exited. A supervisor killed before it could
   * say (SIGKILL) stands in for its command: its own exit code or signal.
   */
  ended: Promise<CommandEnd>;
  /** Kills the command at once (SIGKILL). */
  kill: () => void;
}

type PipedSupervisor = ChildProcess & { stdout: Readable; stderr: Readable; stdin: Writable };

interface SupervisedOptions {
  cwd?: string;
  /**
   * Where the command's stdout and stderr go: `pipe` to read them from the supervisor's, or an
   * open file descriptor.
   */
  output: 'pipe' | number;
  /**
   * Runs supervisor and command in a process group of their own, so a terminal's Ctrl-C reaches
   * only this process, which then stops the command when it is ready to.
   */
  detached?: boolean;
}

/** Runs `command` under a supervisor that kills it when this process stops it or dies. */
export function spawnSupervised(
  command: string,
  args: string[],
  options: SupervisedOptions & { output: 'pipe' },
): SupervisedCommand<PipedSupervisor>;
export function spawnSupervised(
  command: string,
  args: string[],
  options: SupervisedOptions,
): SupervisedCommand<ChildProcess>;
export function spawnSupervised(
  command: string,
  args: string[],
  options: SupervisedOptions,
): SupervisedCommand<ChildProcess> {
  const supervisor = spawn(process.execPath, ['-e', supervisorSource, command, ...args], {
    stdio: ['pipe', options.output, options.output, 'pipe'],
    cwd: options.cwd,
    detached: options.detached ?? false,
  });
  const lifeline = supervisor.stdin as Writable;
  // Closing the lifeline is how the command is killed; a supervisor already gone makes that an
  // EPIPE, which must not become an unhandled error here.
  lifeline.on('error', () => undefined);
  let reportPid: (pid: number) => void = () => undefined;
  const pid = new Promise<number>((resolve, reject) => {
    reportPid = resolve;
    supervisor.once('error', reject);
    supervisor.once('exit', () => reject(new Error(`${command} did not start`)));
  });
  // Callers that never ask for the pid must not see its rejection as unhandled.
  pid.catch(() => undefined);
  const reports: string[] = [];
  let partial = '';
  supervisor.stdio[3]?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    reports.push(...lines);
    if (reports[0] !== undefined) reportPid(Number(reports[0]));
  });
  // 'close' comes once every pipe of the supervisor has closed, so its report has been read.
  const ended = new Promise<CommandEnd>((resolve, reject) => {
    supervisor.once('error', reject);
    supervisor.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      const report = reports.find((line) => line.startsWith('exit '))?.split(' ');
      resolve(report ? commandEnd(report) : { code, signal, passedOn: null });
    });
  });
  ended.catch(() => undefined);
  return { supervisor, pid, ended, kill: () => lifeline.end() };
}

/** The supervisor's `exit <code> <signal> <signal passed on>` line, split. */
function commandEnd([, code, signal, passedOn]: string[]): CommandEnd {
  const given = (field: string | undefined) =>
    field === undefined || field === '-' ? null : field;
  return {
    code: given(code) === null ? null : Number(code),
    signal: given(signal) as NodeJS.Signals | null,
    passedOn: given(passedOn) as NodeJS.Signals | null,
  };
}
