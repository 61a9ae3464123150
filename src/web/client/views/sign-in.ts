import { createApi } from '../api.js';
import { field, h } from '../dom.js';
import { save, signOut } from '../session.js';
import type { Session } from '../session-token.js';
import { failureBox } from './failure.js';

/**
 * Sign in with a token: pasted, or brought by the link `npm start` prints (`#token=…`, taken
 * before this view shows). The token is checked with one read of the API before it is kept.
 */
export function signInView(
  reason: string | null,
  onSignedIn: (session: Session) => void,
): { element: HTMLElement; heading: HTMLElement } {
  const heading = h('h1', { tabindex: -1 }, 'Sign in');
  const token = h('textarea', {
    name: 'token',
    rows: 4,
    required: true,
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const failure = failureBox();
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    { 'aria-labelledby': 'sign-in-heading', novalidate: true },
    field(
      'Access token',
      token,
      'Paste the token you were given: locally, the one `npm start` printed; in production, the one your identity provider issued.',
    ),
    failure.element,
    submit,
  );
  heading.id = 'sign-in-heading';
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    failure.clear();
    const value = token.value.trim();
    if (!value) {
      failure.show(new Error('Paste your access token first.'));
      token.focus();
      return;
    }
    const session = save(value);
    submit.disabled = true;
    const api = createApi({ token: () => session.token, onUnauthorized: () => undefined });
    api
      .jobs({ limit: 1 })
      .then(() => onSignedIn(session))
      .catch((error: unknown) => {
        signOut();
        failure.show(error);
        token.focus();
      })
      .finally(() => (submit.disabled = false));
  });
  const element = h(
    'section',
    { class: 'view sign-in' },
    heading,
    reason ? h('p', { class: 'notice', role: 'status' }, reason) : null,
    form,
  );
  return { element, heading };
}
