import type { Client } from '@temporalio/client';
import { pingDatabase, type Db } from '../db/database.js';

export interface Check {
  ok: boolean;
  error?: string;
}
export type Readiness = () => Promise<Record<'temporal' | 'database', Check>>;

const checkTimeoutMs = 2_000;

async function check(probe: () => Promise<unknown>): Promise<Check> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${checkTimeoutMs} ms`)),
      checkTimeoutMs,
    );
  });
  try {
    await Promise.race([probe(), timeout]);
    return { ok: true };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}

export function createReadiness(temporal: Client, db: Db): Readiness {
  return async () => {
    const [temporalCheck, database] = await Promise.all([
      check(() =>
        temporal.connection.withDeadline(Date.now() + checkTimeoutMs, () =>
          temporal.connection.workflowService.getSystemInfo({}),
        ),
      ),
      check(() => pingDatabase(db)),
    ]);
    return { temporal: temporalCheck, database };
  };
}
