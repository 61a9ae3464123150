import { createApi } from '../api.js';
import { field, h } from '../dom.js';
import { save } from '../session.js';
import { describeToken, type Session } from '../session-token.js';
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
    const pasted = describeToken(token.value);
    if (!pasted.token) {
      failure.say('Paste your access token first.');
      token.focus();
      return;
    }
    // A header cannot carry such a character: the request would fail as if offline.
    if (!/^[\x21-\x7e]+$/.test(pasted.token)) {
      failure.say(
        'That is not an access token: it has characters no access token has. Copy it again from where you were given it.',
      );
      token.focus();
      return;
    }
    submit.disabled = true;
    const api = createApi({ token: () => pasted.token, onUnauthorized: () => undefined });
    api
      .jobs({ limit: 1 })
      // Kept only once accepted: a refused token's user is not the one this browser signed in as.
      .then(() => onSignedIn(save(pasted.token)))
      .catch((error: unknown) => {
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
