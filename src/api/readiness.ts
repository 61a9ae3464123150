import type { TemporalAccess } from '../temporal/client.js';
import { pingDatabase, type Db } from '../db/database.js';

export interface Check {
  ok: boolean;
  error?: string;
}
export type Readiness = () => Promise<Record<'temporal' | 'database', Check>>;

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

export function createReadiness(temporal: TemporalAccess, db: Db): Readiness {
  return async () => {
    const [temporalCheck, database] = await Promise.all([
      check((signal) => temporal.ping(signal, checkTimeoutMs)),
      check(() => pingDatabase(db)),
    ]);
    return { temporal: temporalCheck, database };
  };
}
