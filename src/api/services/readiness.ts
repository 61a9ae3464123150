import type { TemporalAccess } from '../../temporal-client.js';
import { pingDatabase, type Db } from '../../db/database.js';
import { mediaToolsVersion, type MediaTools } from '../../media/tools.js';

export interface Check {
  ok: boolean;
  error?: string;
  /** What answered, where it says (ffmpeg's version line). */
  version?: string;
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
 * `ffmpeg` reports the version in use. It fails readiness only when the local provider, which
 * cannot work without it, is selected; the version is read once, it does not change.
 */
export function createReadiness(
  temporal: TemporalAccess,
  db: Db,
  ffmpeg: { tools: MediaTools | null; required: boolean },
): Readiness {
  let version: string | undefined;
  const ffmpegCheck = async (): Promise<Check> => {
    if (!ffmpeg.tools) return { ok: !ffmpeg.required, error: 'no ffmpeg or ffprobe found' };
    const tools = ffmpeg.tools;
    const result = await check(async () => {
      version ??= await mediaToolsVersion(tools);
    });
    return result.ok ? { ok: true, ...(version ? { version } : {}) } : result;
  };
  return async () => {
    const [temporalCheck, database, ffmpegResult] = await Promise.all([
      check((signal) => temporal.ping(signal, checkTimeoutMs)),
      check(() => pingDatabase(db)),
      ffmpegCheck(),
    ]);
    return { temporal: temporalCheck, database, ffmpeg: ffmpegResult };
  };
}
