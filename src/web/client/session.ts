/**
 * Sign-in: the page keeps the token the person gave it in sessionStorage (this tab only, gone
 * when it closes). `npm start` prints a link with a token in the fragment (`#token=…`), which
 * browsers never send to a server: the page takes it and removes it from the address bar and
 * history. In production the token is whatever the identity provider issued; the page mints none.
 */
import { describeToken, type Session } from './session-token.js';

const storageKey = 'vlogflow.token';
const lastUserKey = 'vlogflow.lastUser';

/**
 * Takes a `#token=…` fragment out of the address bar and history (the entry gets `keepHash`
 * instead: none, or the view the page was on); returns the token, or null when there was none.
 */
export function takeTokenFromFragment(keepHash = ''): string | null {
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (!match) return null;
  history.replaceState(history.state, '', `${location.pathname}${location.search}${keepHash}`);
  try {
    return decodeURIComponent(match[1]!);
  } catch {
    return match[1]!;
  }
}

export function currentSession(): Session | null {
  const token = sessionStorage.getItem(storageKey);
  return token ? describeToken(token) : null;
}

export function save(token: string): Session {
  const session = describeToken(token);
  sessionStorage.setItem(storageKey, session.token);
  return session;
}

/**
 * Remembers the session's user as the one this browser last signed in as, once the service
 * has accepted its token: a refused token (a forged link's, an expired one) names no one.
 */
export function rememberUser(session: Session): void {
  if (session.user !== null && lastUser() !== session.user) {
    localStorage.setItem(lastUserKey, session.user);
  }
}

/**
 * The user this browser last signed in as on this page: a name, never a token, kept across
 * tabs (a link opens in a new one, with no session to compare it to).
 */
export function lastUser(): string | null {
  return localStorage.getItem(lastUserKey);
}

export function signOut(): void {
  sessionStorage.removeItem(storageKey);
}
