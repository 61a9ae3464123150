export { aiGenerationJob } from './ai-generation.js';
export { sweepExpiredMedia } from './media-sweep.js';
export { probeJob } from './probe.js';
export { vlogJob } from './vlog.js';
