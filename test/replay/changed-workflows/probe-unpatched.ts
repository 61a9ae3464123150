// Test-only: the same change as probe-patched.ts shipped without patched(): a run started on
// the previous build meets a timer where its history recorded the job's registration.
import { sleep } from '@temporalio/workflow';
import { probeJob as previousProbeJob } from '../../../src/kinds/probe/workflow.js';
import type { ProbeJobInput, ProbeJobResult } from '../../../src/kinds/probe/declaration.js';

export * from '../../../src/workflows/index.js';

export async function probeJob(input: ProbeJobInput): Promise<ProbeJobResult> {
  await sleep('10ms');
  return previousProbeJob(input);
}
