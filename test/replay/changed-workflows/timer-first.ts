// Test-only: a vlogJob that waits on a timer before anything else, so replay meets the
// recorded first activity (registerJob) where the code now starts a timer.
import { sleep } from '@temporalio/workflow';

export async function vlogJob(): Promise<void> {
  await sleep('1s');
}
