// Renders and samplings are CPU-bound ffmpeg processes: a worker that starts one per queued job
// runs a hundred at once, each at normal priority, and the API on the same machine answers in
// seconds. This pool lets a worker run a few at a time, first come first served, at a lower
// priority than the services that answer requests.
import os from 'node:os';

/** How a process runs media tools; from MEDIA_MAX_CONCURRENT_FFMPEG and MEDIA_FFMPEG_NICE. */
export interface MediaProcessLimits {
  /** Most ffmpeg/ffprobe processes running at once in this process; the rest wait in order. */
  maxConcurrent: number;
  /** Nice value (0–19) media processes run at; never below this process' own. */
  nice: number;
}

/** One fewer than the CPUs, so a core stays free for the API, the database and Temporal. */
export function defaultMaxConcurrentMediaProcesses(): number {
  return Math.max(1, os.availableParallelism() - 1);
}

export const defaultMediaProcessLimits = (): MediaProcessLimits => ({
  maxConcurrent: defaultMaxConcurrentMediaProcesses(),
  nice: 10,
});

interface Waiter {
  grant(): void;
}

/**
 * A signal that aborts when either does, until `release`. Not `AbortSignal.any`: the pool's stop
 * signal lives as long as the worker, and Node keeps a record of every signal joined with it
 * (on Node 20 about 60 bytes a run, for good, whether the run was aborted or not), so a
 * worker's memory grew with every ffmpeg and ffprobe it ran. Here the listeners go with the run.
 */
function joinSignals(
  first: AbortSignal,
  second: AbortSignal,
): { signal: AbortSignal; release(): void } {
  const joined = new AbortController();
  const abort = (event: Event) => joined.abort((event.target as AbortSignal).reason);
  const sources = [first, second];
  for (const source of sources) {
    if (source.aborted) joined.abort(source.reason);
    else source.addEventListener('abort', abort, { once: true });
  }
  return {
    signal: joined.signal,
    release: () => sources.forEach((source) => source.removeEventListener('abort', abort)),
  };
}

export class MediaProcessPool {
  private running = 0;
  private readonly waiting: Waiter[] = [];
  private readonly stopping = new AbortController();

  constructor(readonly limits: MediaProcessLimits) {}

  /** Processes running now, and runs waiting for a slot (tests and logs read them). */
  get usage(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  /** Whether `stop` was called: every run since ends at once. */
  get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  /**
   * Runs `work` (which starts one process and settles when it has exited) once a slot is free,
   * handing it `signal` joined with the pool's `stop`: the process must end when it aborts.
   * Time spent waiting is not the process' time: a timeout inside `work` starts with it. An abort
   * while waiting gives up the place in the queue and rejects with the signal's reason.
   */
  async run<T>(
    signal: AbortSignal | undefined,
    work: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    if (!signal) return this.runWhenFree(this.stopping.signal, work);
    const joined = joinSignals(signal, this.stopping.signal);
    try {
      return await this.runWhenFree(joined.signal, work);
    } finally {
      joined.release();
    }
  }

  private async runWhenFree<T>(
    signal: AbortSignal,
    work: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    await this.acquire(signal);
    try {
      return await work(signal);
    } finally {
      this.release();
    }
  }

  /**
   * Ends every run for good: running processes are aborted, waiting runs reject, new ones are
   * refused. A worker shutting down stops its media work this way: a retry redoes it.
   */
  stop(): void {
    this.stopping.abort(new Error('The media processes were stopped'));
  }

  /** Lowers a just-started process to the configured priority (it may already have exited). */
  lowerPriority(pid: number | undefined): void {
    if (pid === undefined) return;
    try {
      // Unprivileged processes may only raise their nice value.
      os.setPriority(pid, Math.max(this.limits.nice, os.getPriority()));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }

  private acquire(signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    if (this.running < this.limits.maxConcurrent && this.waiting.length === 0) {
      this.running += 1;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          signal?.removeEventListener('abort', abandon);
          this.running += 1;
          resolve();
        },
      };
      const abandon = () => {
        this.waiting.splice(this.waiting.indexOf(waiter), 1);
        // An AbortSignal's reason is an Error unless the caller aborted with something else.
        reject(signal!.reason as Error);
      };
      signal?.addEventListener('abort', abandon, { once: true });
      this.waiting.push(waiter);
    });
  }

  private release(): void {
    this.running -= 1;
    if (this.running < this.limits.maxConcurrent) this.waiting.shift()?.grant();
  }
}
