export { probeJob } from './probe.js';
export { vlogJob } from './vlog.js';
