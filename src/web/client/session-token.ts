// What a token says of itself, and what a `#token=` link may do to the tab's session: no DOM,
// so that the unit tests run it as it is.

export interface Session {
  token: string;
  /** The user the token names (`sub`), for display only: the API checks the token itself. */
  user: string | null;
  /** When the token expires, if it says. */
  expiresAt: Date | null;
}

/**
 * What a token says of itself, unverified (the API verifies it): as pasted, or a link's. No
 * token has spaces or invisible characters, so those a paste brings (a terminal's line breaks, a
 * chat's zero-width spaces) go.
 */
export function describeToken(token: string): Session {
  const trimmed = token
    .trim()
    .replace(/^Bearer\s+/i, '')
    .replace(/[\s\p{Cf}]+/gu, '');
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
 * What a link's token may do to the tab's session: sign in (there is none, and this browser
 * last signed in as the link's user or never), refresh it (the same user, by the `sub` both
 * name), or only after the person says so (another user than the session's or the last one,
 * or a token that names none). The same user's token that expires before the session's is
 * not taken (`keep`): it would end the session sooner, unseen.
 */
export function linkTokenEffect(
  current: Session | null,
  link: Session,
  lastUser: string | null = null,
): 'sign-in' | 'refresh' | 'keep' | 'ask' {
  if (!current) return lastUser === null || lastUser === link.user ? 'sign-in' : 'ask';
  if (current.user === null || current.user !== link.user) return 'ask';
  const sooner = current.expiresAt && link.expiresAt && link.expiresAt < current.expiresAt;
  return sooner ? 'keep' : 'refresh';
}
