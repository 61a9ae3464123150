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

/** What a JWT says of itself, unverified (the API verifies it). */
function describe(token: string): Session {
  try {
    const payload = token.split('.')[1] ?? '';
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const claims = JSON.parse(json) as { sub?: unknown; exp?: unknown };
    return {
      token,
      user: typeof claims.sub === 'string' ? claims.sub : null,
      expiresAt: typeof claims.exp === 'number' ? new Date(claims.exp * 1000) : null,
    };
  } catch {
    return { token, user: null, expiresAt: null };
  }
}

/**
 * Takes a `#token=…` fragment into the session and out of the address bar and history; says
 * whether there was one.
 */
export function takeTokenFromFragment(): boolean {
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (!match) return false;
  save(decodeURIComponent(match[1]!));
  history.replaceState(history.state, '', `${location.pathname}${location.search}`);
  return true;
}

export function currentSession(): Session | null {
  const token = sessionStorage.getItem(storageKey);
  return token ? describe(token) : null;
}

export function save(token: string): Session {
  const trimmed = token.trim().replace(/^Bearer\s+/i, '');
  sessionStorage.setItem(storageKey, trimmed);
  return describe(trimmed);
}

export function signOut(): void {
  sessionStorage.removeItem(storageKey);
}
