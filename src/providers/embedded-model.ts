/**
 * The embedded model: what AI jobs use when no provider is configured, so a fresh clone's
 * `npm start` completes an AI job offline. llama.cpp's server, installed with a small GGUF
 * model by `embedded-model/install.sh` (pinned, into `.local/`), runs as a child of the worker
 * on a port the system picks; the worker talks to it through the OpenAI-compatible provider.
 * It runs in a process group of its own, so a terminal's Ctrl-C reaches only the worker, which
 * stops it in its order; its supervisor kills it if the worker dies.
 */
import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { runInstallScript } from '../../temporal/dev-server.js';
import { spawnSupervised, type SupervisedCommand } from '../supervisor.js';
import { embeddedModelSlots } from '../config.js';
import { makeDirectory } from '../directories.js';

/** The model `embedded-model/install.sh` installs: tiny, so its answers are poor. */
export const defaultEmbeddedModel = {
  name: 'SmolLM2-135M-Instruct.Q4_1',
  notice:
    'Written by SmolLM2-135M-Instruct, the tiny model embedded for trying vlogflow offline: ' +
    'expect poor answers. Point OPENAI_BASE_URL and OPENAI_MODEL (or GEMINI_API_KEY) at a real ' +
    'model for useful ones.',
};

export interface EmbeddedModelOptions {
  /** A GGUF file to serve instead of the installed default. */
  modelFile?: string | undefined;
  threads: number;
  /** The server's output goes here. */
  logFile: string;
  /** Longest wait for the model to load. */
  startTimeoutMs?: number;
}

/** Tokens of context per request slot: a prompt and the longest answer read fit in it. */
const contextPerSlot = 8_192;

interface RunningServer {
  baseUrl: string;
  pid: number;
  server: SupervisedCommand<ChildProcess>;
}

/**
 * Starts on first use (a worker that never runs an AI job never loads the model) and once: every
 * caller shares the one server until `stop`, after which it does not start again. A server that
 * ends without `stop` (killed from outside) is started again by the next call.
 */
export class EmbeddedModel {
  readonly model: string;
  readonly notice: string | null;
  private started: Promise<RunningServer> | null = null;
  private stopped = false;

  constructor(private readonly options: EmbeddedModelOptions) {
    this.model = options.modelFile
      ? path.basename(options.modelFile).replace(/\.gguf$/i, '')
      : defaultEmbeddedModel.name;
    this.notice = options.modelFile ? null : defaultEmbeddedModel.notice;
  }

  /** The server's OpenAI-compatible base URL (up to `/v1`), once it serves the model. */
  async baseUrl(): Promise<string> {
    return (await this.serving()).baseUrl;
  }

  /** The server's base URL and pid, once it serves the model; starts it if none runs. */
  async serving(): Promise<{ baseUrl: string; pid: number }> {
    if (this.stopped) throw new Error('The embedded model server was stopped with this worker');
    if (!this.started) {
      const started: Promise<RunningServer> = this.start().catch((error: unknown) => {
        if (this.started === started) this.started = null;
        throw error;
      });
      this.started = started;
      void this.forgetWhenLost(started);
    }
    const { baseUrl, pid } = await this.started;
    return { baseUrl, pid };
  }

  /** Forgets a server that ended without `stop` (killed from outside): the next call starts one. */
  private async forgetWhenLost(started: Promise<RunningServer>): Promise<void> {
    const ended = await started
      .then(({ server }) => server.ended)
      .then(
        () => true,
        () => false,
      );
    if (ended && this.started === started) this.started = null;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const started = this.started;
    this.started = null;
    const server = await started?.catch(() => null);
    if (!server) return;
    const { supervisor } = server.server;
    if (supervisor.exitCode !== null || supervisor.signalCode !== null) return;
    const exited = new Promise((resolve) => supervisor.once('exit', resolve));
    supervisor.kill('SIGTERM');
    const timer = setTimeout(server.server.kill, 5_000);
    await exited;
    clearTimeout(timer);
  }

  private async start(): Promise<RunningServer> {
    const installed = await runInstallScript('embedded-model/install.sh', [
      'python',
      'server',
      'model',
    ]);
    const args = [
      installed.server,
      '--model',
      this.options.modelFile ?? installed.model,
      '--threads',
      String(this.options.threads),
      '--context',
      String(contextPerSlot * embeddedModelSlots),
      '--parallel',
      String(embeddedModelSlots),
    ];
    await makeDirectory(path.dirname(this.options.logFile));
    const log = createWriteStream(this.options.logFile, { flags: 'a' });
    const server = spawnSupervised(installed.python, args, { output: 'pipe', detached: true });
    server.supervisor.stderr.pipe(log, { end: false });
    server.supervisor.once('exit', () => log.end());
    const lines = createInterface({ input: server.supervisor.stdout });
    const listening = new Promise<string>((resolve, reject) => {
      lines.on('line', (line) => {
        log.write(`${line}\n`);
        const match = /^listening (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
        if (match) resolve(match[1]!);
      });
      server.supervisor.once('exit', (code) =>
        reject(
          new Error(
            `The embedded model server exited with code ${code} before it served (log: ${this.options.logFile})`,
          ),
        ),
      );
    });
    const timeoutMs = this.options.startTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      const url = await Promise.race([
        listening,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new Error(
                  `The embedded model did not load within ${timeoutMs / 1000} s (log: ${this.options.logFile})`,
                ),
              ),
            timeoutMs,
          );
        }),
      ]);
      return { baseUrl: `${url}/v1`, pid: await server.pid, server };
    } catch (error) {
      server.kill();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
}
