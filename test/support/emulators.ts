import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { eventually } from './eventually.js';
import { onFreePorts } from './ports.js';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through \`npm test\``);
  return value;
}

export interface Emulator {
  endpoint: string;
  /** Everything the emulator printed: its access log. */
  output: string[];
  stop(): Promise<void>;
}

function startEmulator(
  command: string,
  args: (port: number) => string[],
  readyPath: string,
): Promise<Emulator> {
  return onFreePorts(1, ([port]) => startEmulatorOn(port!, command, args, readyPath));
}

async function startEmulatorOn(
  port: number,
  command: string,
  args: (port: number) => string[],
  readyPath: string,
): Promise<Emulator> {
  const child: ChildProcess = spawn(command, args(port), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env },
  });
  const output: string[] = [];
  const collect = (chunk: Buffer) =>
    output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  // A command that cannot start (missing, or a script whose interpreter is gone) emits `error`
  // and may never emit `exit`: waiting for `exit` alone hung the test file for good.
  let ended: (() => Error) | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      ended ??= () => new Error(`${command} exited:\n${output.join('\n')}`);
      resolve();
    });
    child.once('error', (error) => {
      ended = () => new Error(`${command} could not start: ${error.message}`);
      resolve();
    });
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    await Promise.race([
      eventually(
        async () => (await fetch(`${endpoint}${readyPath}`)).ok,
        (ok) => ok || ended !== undefined,
        { what: `${path.basename(command)} ready`, timeoutMs: 20_000 },
      ),
      exited.then(() => {
        throw ended!();
      }),
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, output, stop };
}

/**
 * fake-gcs-server in memory, with the given buckets created at start. `binary` defaults to the
 * one `npm test` installed (TEST_FAKE_GCS_PATH).
 */
export async function startFakeGcs(
  buckets: string[],
  binary = required('TEST_FAKE_GCS_PATH'),
): Promise<Emulator> {
  const seed = await mkdtemp(path.join(os.tmpdir(), 'fake-gcs-seed-'));
  for (const bucket of buckets) await mkdir(path.join(seed, bucket));
  const emulator = await startEmulator(
    binary,
    (port) => [
      '-scheme',
      'http',
      '-host',
      '127.0.0.1',
      '-port',
      String(port),
      '-backend',
      'memory',
      '-data',
      seed,
      '-external-url',
      `http://127.0.0.1:${port}`,
      '-log-level',
      'warn',
    ],
    '/storage/v1/b',
  );
  return {
    ...emulator,
    stop: async () => {
      await emulator.stop();
      await rm(seed, { recursive: true, force: true });
    },
  };
}

/** moto's S3 server: the S3-compatible side (R2 in production). */
export async function startMoto(): Promise<Emulator & { uploadedParts(key: string): number }> {
  const emulator = await startEmulator(
    required('TEST_MOTO_PATH'),
    (port) => ['-H', '127.0.0.1', '-p', String(port)],
    '/moto-api/',
  );
  return {
    ...emulator,
    // moto has no counters; its access log has one line per request.
    uploadedParts: (key) =>
      emulator.output.filter(
        (line) => line.includes(`PUT /`) && line.includes(`/${key}?partNumber=`),
      ).length,
  };
}
