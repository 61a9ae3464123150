/**
 * Sign-in: the page keeps the token the person gave it in sessionStorage (this tab only, gone
 * when it closes). `npm start` prints a link with a token in the fragment (`#token=…`), which
 * browsers never send to a server: the page takes it and removes it from the address bar and
 * history. In production the token is whatever the identity provider issued; the page mints none.
 */
const storageKey = 'vlogflow.token';

export interface Session {
  token: string;
  /** The user the token names (`sub`), for display only: the API checks the token itself. */
  user: string | null;
  /** When the token expires, if it says. */
  expiresAt: Date | null;
}

/** What a token says of itself, unverified (the API verifies it): as pasted, or a link's. */
export function describeToken(token: string): Session {
  const trimmed = token.trim().replace(/^Bearer\s+/i, '');
  try {
    const payload = trimmed.split('.')[1] ?? '';
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const claims = JSON.parse(json) as { sub?: unknown; exp?: unknown };
    return {
      token: trimmed,
      user: typeof claims.sub === 'string' ? claims.sub : null,
      expiresAt: typeof claims.exp === 'number' ? new Date(claims.exp * 1000) : null,
    };
  } catch {
    return { token: trimmed, user: null, expiresAt: null };
  }
}

/**
 * What a link's token may do to the tab's session: sign in (there is none), refresh it (the
 * same user, by the `sub` both name), or only after the person says so (another user, or a
 * token that names none).
 */
export function linkTokenEffect(
  current: Session | null,
  link: Session,
): 'sign-in' | 'refresh' | 'ask' {
  if (!current) return 'sign-in';
  return current.user !== null && current.user === link.user ? 'refresh' : 'ask';
}

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

export function signOut(): void {
  sessionStorage.removeItem(storageKey);
}
