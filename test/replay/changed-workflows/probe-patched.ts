// Test-only: the next build of the workflows, in which a probe first waits on a timer. The
// change is behind patched(), so runs started on the previous build keep their old path.
import { patched, sleep } from '@temporalio/workflow';
import { probeJob as previousProbeJob } from '../../../src/kinds/probe/workflow.js';
import type { ProbeJobInput, ProbeJobResult } from '../../../src/kinds/probe/declaration.js';

export * from '../../../src/workflows/index.js';

const probeSettlingPatch = 'probe-settles-first';

export async function probeJob(input: ProbeJobInput): Promise<ProbeJobResult> {
  if (patched(probeSettlingPatch)) await sleep('10ms');
  return previousProbeJob(input);
}
