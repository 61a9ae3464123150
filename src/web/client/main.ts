import { createApi, type ApiFailure } from './api.js';
import type { PageContext, View, ViewFactory } from './context.js';
import { h, replace } from './dom.js';
import { currentSession, signOut, takeTokenFromFragment, type Session } from './session.js';
import { historyView } from './views/history.js';
import { makeVlogView } from './views/make-vlog.js';
import { aiJobView, planView } from './views/plan.js';
import { signInView } from './views/sign-in.js';
import { vlogView } from './views/vlog.js';

/** The page's views by their address (`#/vlogs/<id>`…); the first is the default. */
const routes: [RegExp, ViewFactory, string][] = [
  [/^#\/make$/, makeVlogView, 'Make a vlog'],
  [/^#\/vlogs\/([^/]+)$/, vlogView, 'Vlog'],
  [/^#\/plan$/, planView, 'Plan with AI'],
  [/^#\/ai\/([^/]+)$/, aiJobView, 'AI plan'],
  [/^#\/history$/, historyView, 'History'],
];

const main = document.getElementById('main')!;
const nav = document.getElementById('nav')!;
const account = document.getElementById('account')!;
const announcer = document.getElementById('announcer')!;

let current: View | null = null;
let session: Session | null = null;
let signOutReason: string | null = null;
const handOver = new Map<string, unknown>();

function announce(message: string) {
  // Emptied first, so that the same message said twice is read twice.
  announcer.textContent = '';
  setTimeout(() => (announcer.textContent = message), 50);
}

function show(view: View, title: string) {
  current?.dispose?.();
  current = view;
  replace(main, view.element);
  document.title = `${title} · vlogflow`;
  view.heading.focus();
}

function onUnauthorized(failure: ApiFailure) {
  signOut();
  session = null;
  signOutReason = `${failure.sentence} (${failure.detail})`;
  render();
}

const api = createApi({ token: () => session?.token ?? null, onUnauthorized });

function renderAccount() {
  nav.hidden = !session;
  if (!session) return replace(account);
  replace(
    account,
    h('span', {}, session.user ? `Signed in as ${session.user}` : 'Signed in'),
    h(
      'button',
      {
        type: 'button',
        class: 'link',
        on: {
          click: () => {
            signOut();
            session = null;
            signOutReason = 'You signed out.';
            render();
          },
        },
      },
      'Sign out',
    ),
  );
}

function markCurrentLink(hash: string) {
  for (const link of nav.querySelectorAll('a')) {
    const here = hash.startsWith(link.getAttribute('href')!);
    if (here) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function render() {
  session ??= currentSession();
  renderAccount();
  if (!session) {
    const view = signInView(signOutReason, (signedIn) => {
      session = signedIn;
      signOutReason = null;
      announce(`Signed in${signedIn.user ? ` as ${signedIn.user}` : ''}`);
      render();
    });
    show(view, 'Sign in');
    return;
  }
  // An address that is no view's (none, or a fragment of another kind) shows the first.
  const [pattern, factory, title] =
    routes.find(([route]) => route.test(location.hash)) ?? routes[0]!;
  const params = pattern.exec(location.hash)?.slice(1) ?? [];
  markCurrentLink(pattern.test(location.hash) ? location.hash : '#/make');
  const context: PageContext = {
    api,
    announce,
    navigate: (next) => {
      if (location.hash === next) render();
      else location.hash = next;
    },
    pollOnly: new URLSearchParams(location.search).get('live') === 'poll',
    confirmEndMs: positiveInteger(new URLSearchParams(location.search).get('confirm-end-ms')),
    handOver,
  };
  show(factory(context, ...params.map(decodeURIComponent)), title);
}

/** A whole number of milliseconds above zero, from the page's address; anything else is none. */
function positiveInteger(text: string | null): number | undefined {
  const value = Number(text);
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

/** A `#token=` link opened on the page already loaded signs in too (a hash change, no load). */
function signInFromFragment(): void {
  if (!takeTokenFromFragment()) return;
  session = null;
  signOutReason = null;
}

signInFromFragment();
window.addEventListener('hashchange', () => {
  signInFromFragment();
  render();
});
render();
