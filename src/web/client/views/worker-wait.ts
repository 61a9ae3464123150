import { h } from '../dom.js';
import type { WaitingForWorker } from '../follow-job.js';

/**
 * The line that says a job does not move because no worker serves its queue (an API started
 * without its worker): without it the page showed the job's last step, as if merely slow.
 */
export function workerWaitLine(): {
  element: HTMLElement;
  show: (waiting: WaitingForWorker | null) => void;
} {
  const element = h('p', { class: 'transport worker-wait', role: 'status', hidden: true });
  return {
    element,
    show(waiting) {
      element.hidden = waiting === null;
      element.textContent = waiting?.message ?? '';
    },
  };
}
