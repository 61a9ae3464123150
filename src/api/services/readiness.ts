import type { TemporalAccess } from '../../temporal-client.js';
import { pingDatabase, type Db } from '../../db/database.js';
import type { MediaWorkers, MediaWorkersReport } from './media-workers.js';
import { sharedWhileRunning } from './shared-while-running.js';

export interface Check {
  ok: boolean;
  error?: string;
}
export type Readiness = () => Promise<Record<'temporal' | 'database' | 'ffmpeg', Check>>;

const checkTimeoutMs = 2_000;

/** Runs one probe with a time limit; the probe is aborted (not left running) when it is exceeded. */
async function check(probe: (signal: AbortSignal) => Promise<unknown>): Promise<Check> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new Error(`no answer within ${checkTimeoutMs} ms`);
      controller.abort(error);
      reject(error);
    }, checkTimeoutMs);
  });
  try {
    await Promise.race([probe(controller.signal), timeout]);
    return { ok: true };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `ffmpeg` reports the ffmpeg of the workers polling the media task queue, as their identities
 * name it (the API runs none itself). It fails readiness only when the local provider, which
 * cannot work without it, is selected and no such worker has ffmpeg.
 */
export function createReadiness(
  temporal: TemporalAccess,
  db: Db,
  ffmpeg: { workers: MediaWorkers; required: boolean },
): Readiness {
  const ffmpegCheck = async (): Promise<Check> => {
    const answer: { report?: MediaWorkersReport } = {};
    // The queues' watch bounds its own read (and shares it with the API's other readers).
    const asked = await check(async () => {
      answer.report = await ffmpeg.workers.report();
    });
    const { report } = answer;
    if (!report) return { ok: !ffmpeg.required, error: `workers not asked: ${asked.error}` };
    // The versions stay in the workers' identities, for operators: /readyz asks no token, and
    // an exact build tells an attacker which published flaws its parsers have.
    if (report.ffmpegVersions.length > 0) return { ok: true };
    return {
      ok: !ffmpeg.required,
      error:
        report.pollers === 0
          ? `no worker polls ${report.taskQueue}`
          : `no worker polling ${report.taskQueue} has ffmpeg and ffprobe`,
    };
  };
  const checkAll = async () => {
    const [temporalCheck, database, ffmpegResult] = await Promise.all([
      check((signal) => temporal.ping(signal, checkTimeoutMs)),
      check(() => pingDatabase(db)),
      ffmpegCheck(),
    ]);
    return { temporal: temporalCheck, database, ffmpeg: ffmpegResult };
  };
  // `/readyz` asks no token: requests that arrive while a check runs share its answer, so a
  // flood of them costs Temporal and the database one check at a time, not one each, and
  // holds none of the database connections the API's own requests need.
  const shared = sharedWhileRunning<'all', Awaited<ReturnType<Readiness>>>();
  return () => shared('all', checkAll);
}
