import { createApi, type ApiFailure } from './api.js';
import type { PageContext, View, ViewFactory } from './context.js';
import { h, replace } from './dom.js';
import {
  currentSession,
  lastUser,
  rememberUser,
  save,
  signOut,
  takeTokenFromFragment,
} from './session.js';
import { describeToken, linkTokenEffect, type Session } from './session-token.js';
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
  [/^#\/plan\/([^/]+)$/, planView, 'Plan with AI'],
  [/^#\/ai\/([^/]+)$/, aiJobView, 'AI plan'],
  [/^#\/history$/, historyView, 'History'],
];

const main = document.getElementById('main')!;
const nav = document.getElementById('nav')!;
const account = document.getElementById('account')!;
const announcer = document.getElementById('announcer')!;
const notices = document.getElementById('notices')!;

let current: View | null = null;
let currentTitle = '';
/**
 * The view a refused token interrupted while it held the person's input (a vlog's files
 * chosen): shown again, not made anew, when the same user signs in on the same address.
 */
let interrupted: { view: View; title: string; hash: string; user: string } | null = null;
let session: Session | null = null;
let signOutReason: string | null = null;
const handOver = new Map<string, unknown>();
/** The number of the latest `#token=` link: the check of an earlier one, answered later, is dropped. */
let linkCount = 0;
/** The question a link asks (switch accounts?), while it is open. */
let question: HTMLDialogElement | null = null;

function announce(message: string) {
  // Emptied first, so that the same message said twice is read twice.
  announcer.textContent = '';
  setTimeout(() => (announcer.textContent = message), 50);
}

function show(view: View, title: string) {
  current?.dispose?.();
  current = view;
  currentTitle = title;
  replace(main, view.element);
  document.title = `${title} · vlogflow`;
  view.heading.focus();
}

function onUnauthorized(failure: ApiFailure) {
  const user = session?.user ?? null;
  signOut();
  session = null;
  clearNotice();
  signOutReason = `${failure.sentence} (${failure.detail})`;
  if (current?.holdsInput?.() && user !== null) {
    interrupted = { view: current, title: currentTitle, hash: location.hash, user };
    current = null;
    signOutReason += ` What you were making is kept if you sign in as ${user} again.`;
  }
  render();
}

/** Shows the interrupted view again if it is this session's and address's; otherwise drops it. */
function resumeInterrupted(signedIn: Session): boolean {
  const kept = interrupted;
  if (!kept) return false;
  interrupted = null;
  if (kept.user !== signedIn.user || kept.hash !== location.hash) {
    kept.view.dispose?.();
    return false;
  }
  show(kept.view, kept.title);
  markCurrentLink(kept.hash);
  return true;
}

const api = createApi({
  token: () => session?.token ?? null,
  onUnauthorized,
  onAuthorized: () => session && rememberUser(session),
});

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
            clearNotice();
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
  if (session && resumeInterrupted(session)) return;
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
  show(factory(context, ...params.map(decodeParam)), title);
}

/** An address's part as the view takes it; one with a broken escape (a link cut short) as is. */
function decodeParam(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** A whole number of milliseconds above zero, from the page's address; anything else is none. */
function positiveInteger(text: string | null): number | undefined {
  const value = Number(text);
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

/** Who a session is, in a sentence. */
const who = (signedIn: Session) => signedIn.user ?? 'an account that gives no name';

/**
 * A `#token=` link, opened in a new tab or on the page already open (a hash change, no load).
 * Anyone can send a link with a token of their own, to switch the person who opens it into
 * their account, so the token signs in without asking only where there is no session (the
 * link `npm start` prints). Over a session it is checked with the API first, then refreshes the
 * session of the same user silently and, for another user, asks. Either way the fragment leaves
 * the address bar (for `keepHash`, the view the page was on). Says whether there was a link.
 */
function takeLinkToken(keepHash: string): boolean {
  session ??= currentSession();
  const token = takeTokenFromFragment(session ? keepHash : '');
  if (token === null) return false;
  linkCount += 1;
  dismissQuestion();
  clearNotice();
  const link = describeToken(token);
  if (linkTokenEffect(session, link, lastUser()) === 'sign-in') {
    save(link.token);
    session = null;
    signOutReason = null;
    return true;
  }
  void checkLinkToken(link, linkCount);
  return true;
}

async function checkLinkToken(link: Session, count: number): Promise<void> {
  const linkApi = createApi({ token: () => link.token, onUnauthorized: () => undefined });
  const refusal = await linkApi.jobs({ limit: 1 }).then(
    () => null,
    (error: unknown) => error as ApiFailure,
  );
  if (count !== linkCount) return;
  if (refusal) {
    const kept = session ? ` You are still signed in as ${who(session)}.` : '';
    showNotice(
      refusal.status === 401
        ? `The link you opened was not used: its token was refused.${kept}`
        : `The link you opened was not used: its token could not be checked.${kept}`,
      refusal.detail,
    );
    return;
  }
  switch (linkTokenEffect(session, link, lastUser())) {
    case 'sign-in':
      return switchTo(link);
    case 'refresh':
      session = save(link.token);
      return;
    case 'keep':
      showNotice(
        `The link you opened was not used: its token expires before this tab's. You are still signed in as ${who(link)}.`,
        '',
      );
      return;
    case 'ask':
      return askToSwitch(link);
  }
}

/** Signs the tab in as the link's user, on the first view (the one open was the other's). */
function switchTo(link: Session): void {
  session = save(link.token);
  signOutReason = null;
  handOver.clear();
  history.replaceState(null, '', `${location.pathname}${location.search}`);
  announce(`Signed in as ${who(link)}`);
  render();
}

/**
 * Asks whether to switch to the link's user, in the page (a modal dialog, focus on staying):
 * from the tab's session, or in a tab without one, from the user this browser last signed in
 * as (a link opened in a new tab). Staying is what Escape does too.
 */
function askToSwitch(link: Session): void {
  const current = session;
  const stay = h(
    'button',
    { type: 'button' },
    current ? `Stay signed in as ${who(current)}` : 'Do not sign in',
  );
  const change = h('button', { type: 'button', class: 'secondary' }, `Switch to ${who(link)}`);
  const standing = current
    ? `This tab is signed in as ${who(current)}.`
    : `This browser last signed in here as ${lastUser() ?? 'someone else'}.`;
  const dialog = h(
    'dialog',
    {
      class: 'question',
      'aria-labelledby': 'switch-heading',
      'aria-describedby': 'switch-text',
    },
    h('h2', { id: 'switch-heading' }, 'Switch account?'),
    h('p', { id: 'switch-text' }, `The link you opened signs in as ${who(link)}. ${standing}`),
    h(
      'p',
      {},
      `Switch only if you meant to use ${who(link)}’s account: what you upload and plan after switching goes there.`,
    ),
    h('div', { class: 'actions' }, stay, change),
  );
  let switching = false;
  stay.addEventListener('click', () => dialog.close());
  change.addEventListener('click', () => {
    switching = true;
    dialog.close();
  });
  dialog.addEventListener('close', () => {
    if (question !== dialog) return;
    question = null;
    dialog.remove();
    if (switching) switchTo(link);
    else if (session) announce(`Still signed in as ${who(session)}; the link was not used.`);
    else announce('The link was not used.');
  });
  question = dialog;
  document.body.append(dialog);
  dialog.showModal();
  stay.focus();
}

/** Closes a question a link asked without an answer: a newer link takes its place. */
function dismissQuestion(): void {
  const open = question;
  question = null;
  open?.close();
  open?.remove();
}

/** A notice under the page's header, read out as it appears, until dismissed or replaced. */
function showNotice(sentence: string, detail: string): void {
  replace(
    notices,
    h(
      'div',
      { class: 'failure' },
      h(
        'div',
        { role: 'alert' },
        h('p', { class: 'sentence' }, sentence),
        detail ? h('p', { class: 'detail' }, detail) : null,
      ),
      h('button', { type: 'button', class: 'link', on: { click: clearNotice } }, 'Dismiss'),
    ),
  );
}

function clearNotice(): void {
  replace(notices);
}

takeLinkToken('');
window.addEventListener('hashchange', (event) => {
  const before = new URL(event.oldURL).hash;
  // Over a session, the view the page was on stays as it was, behind the question.
  if (takeLinkToken(before) && session) return;
  render();
});
render();
