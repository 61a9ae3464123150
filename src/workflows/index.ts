export { probeJob } from './probe.js';
