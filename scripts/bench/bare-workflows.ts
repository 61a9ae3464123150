// The baseline of the orchestration figures: a workflow that does nothing but run `activities`
// no-op activities and then `localActivities` no-op local activities, one after another — the
// least any Temporal job with that many steps can cost on this server.
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { bareActivities } from './bare-activities.js';

type Activities = typeof bareActivities;

const { bareStep } = proxyActivities<Activities>({ startToCloseTimeout: '1 minute' });
const { bareStep: bareLocalStep } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '1 minute',
});

export interface BareWorkflowInput {
  activities: number;
  localActivities: number;
}

export async function bareWorkflow({
  activities,
  localActivities,
}: BareWorkflowInput): Promise<number> {
  for (let step = 0; step < activities; step += 1) await bareStep({ step });
  for (let step = 0; step < localActivities; step += 1) await bareLocalStep({ step });
  return activities + localActivities;
}
