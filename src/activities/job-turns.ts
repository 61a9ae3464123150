import type { ClaimJobTurnRequest, JobTurn, JobsAwaitingTurnRequest } from '../jobs/contracts.js';
import { claimJobTurn, listJobsAwaitingTurn } from '../db/job-turns.js';
import type { Db } from '../db/database.js';

/** Activities that keep the jobs sharing a concurrency key in line (`src/db/job-turns.ts`). */
export function createJobTurnActivities({ db }: { db: Db }) {
  return {
    claimJobTurn(request: ClaimJobTurnRequest): Promise<JobTurn> {
      return claimJobTurn(db, request);
    },

    listJobsAwaitingTurn({ jobId }: JobsAwaitingTurnRequest): Promise<string[]> {
      return listJobsAwaitingTurn(db, jobId);
    },
  };
}
