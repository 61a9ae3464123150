export { aiGenerationJob } from '../kinds/ai/workflow.js';
export { probeJob } from '../kinds/probe/workflow.js';
export { vlogJob } from '../kinds/vlog/workflow.js';
export { inspectUploadedMedia } from './media-inspection.js';
export { sweepExpiredMedia } from './media-sweep.js';
export { reconcileJobProjections } from './job-reconcile.js';
export { recordDeferredCharge } from './ledger-charge.js';
