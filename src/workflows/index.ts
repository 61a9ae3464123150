export { aiGenerationJob } from './ai-generation.js';
export { probeJob } from './probe.js';
export { vlogJob } from './vlog.js';
