import { ApiFailure } from '../api.js';
import { h, replace } from '../dom.js';
import { sentenceFor } from '../error-sentences.js';

/**
 * An error box: the sentence for the code, and the API's message (which names the field or
 * file) below it. `role="alert"` so that it is read out as it appears.
 */
export function failureBox(): {
  element: HTMLDivElement;
  show(error: unknown): void;
  /** A problem the page found itself, in its own words. */
  say(sentence: string): void;
  clear(): void;
} {
  const element = h('div', { class: 'failure', role: 'alert', hidden: true });
  return {
    element,
    show(error) {
      const failure =
        error instanceof ApiFailure
          ? error
          : new ApiFailure('UNEXPECTED_ANSWER', String((error as Error)?.message ?? error), null);
      replace(
        element,
        h('p', { class: 'sentence' }, failure.sentence),
        failure.detail ? h('p', { class: 'detail' }, failure.detail) : null,
      );
      element.hidden = false;
    },
    say(sentence) {
      replace(element, h('p', { class: 'sentence' }, sentence));
      element.hidden = false;
    },
    clear() {
      element.hidden = true;
      element.replaceChildren();
    },
  };
}

/** A job's error (`{ code, message }`) as the page words it. */
export function jobErrorText(error: { code: string; message: string }): HTMLElement[] {
  return [
    h('p', { class: 'sentence' }, sentenceFor(error.code)),
    h('p', { class: 'detail' }, error.message),
  ];
}
