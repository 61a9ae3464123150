export { probeJob } from '../kinds/probe/workflow.js';
export { aiGenerationJob } from './ai-generation.js';
export { inspectUploadedMedia } from './media-inspection.js';
export { sweepExpiredMedia } from './media-sweep.js';
export { vlogJob } from './vlog.js';
