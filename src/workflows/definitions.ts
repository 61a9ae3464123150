import { defineQuery } from '@temporalio/workflow';
import type { JobProgress } from '../jobs/messages.js';

/** Live state of any job workflow, answered from the workflow's memory. */
export const jobProgressQuery = defineQuery<JobProgress>('jobProgress');
