// Test-only: a probe as the build before `projectionPatchesApplied` runs it, whose JobTracker
// asked patched() for the projection's patches whatever the job record said. The current
// tracker asks the same questions at the same calls of a record without the flag, so this
// build drops it on the way in; the jobs it records carry it all the same (the API set it).
// Its tracker is today's, so its runs write their projection behind as today's do.
import { probeJob as currentProbeJob } from '../../../src/kinds/probe/workflow.js';
import type { ProbeJobInput, ProbeJobResult } from '../../../src/kinds/probe/declaration.js';

export * from '../../../src/workflows/index.js';

export async function probeJob(input: ProbeJobInput): Promise<ProbeJobResult> {
  return currentProbeJob({ ...input, job: { ...input.job, projectionPatchesApplied: false } });
}
