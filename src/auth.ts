import { createSecretKey, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  createRemoteJWKSet,
  errors,
  jwtVerify,
  SignJWT,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { StartupError, type Config } from './config.js';
import { makeDataDir } from './directories.js';

const algorithm = 'HS256';

/**
 * The HS256 secret tokens are signed with: AUTH_JWT_SECRET when set; outside production a
 * secret generated once into DATA_DIR, so local tokens survive restarts without any setup.
 */
export async function resolveJwtSecret(
  config: Pick<Config, 'AUTH_JWT_SECRET' | 'dataDir'>,
): Promise<string> {
  if (config.AUTH_JWT_SECRET) return config.AUTH_JWT_SECRET;
  const file = path.join(config.dataDir, 'dev-jwt-secret');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await makeDataDir(config.dataDir);
  const secret = randomBytes(32).toString('base64url');
  // 'wx' fails if another process wrote the file first; then its secret is the one to use.
  await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' }).catch(
    (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST')
        throw new StartupError(
          'DATA_DIR',
          `cannot keep the development JWT secret in ${file}`,
          error,
        );
    },
  );
  return (await readFile(file, 'utf8')).trim();
}

const maxUserIdLength = 128;
// Printable ASCII (\x21-\x7e) but for " (\x22), ' (\x27), \ (\x5c) and ` (\x60).
const userIdPattern = new RegExp(
  `^[\\x21\\x23-\\x26\\x28-\\x5b\\x5d-\\x5f\\x61-\\x7e]{1,${maxUserIdLength}}$`,
);

export const userIdRule = `1 to ${maxUserIdLength} printable ASCII characters without spaces, quotes, backquotes or backslashes`;

/**
 * Whether a token's `sub` can be a user id. A user id is stored as the owner of rows, keyed in
 * indexes, written into Temporal's `UserId` search attribute and hashed into job ids, and
 * operators type it into Web UI queries (`UserId = "…"`). So it is short printable ASCII
 * without spaces, quotes, backquotes or backslashes (userIdRule): what identity providers
 * issue (`auth0|…`, UUIDs, numbers), and nothing that needs escaping anywhere it goes.
 */
export function isValidUserId(value: unknown): value is string {
  return typeof value === 'string' && userIdPattern.test(value);
}

/** Signs an HS256 token for `userId`, with the issuer and audience the API requires if any. */
export async function mintToken(
  secret: string,
  userId: string,
  options: {
    /** jose's time span, e.g. `12h`, `30m`. Default `12h`. */
    expiresIn?: string;
    issuer?: string | undefined;
    audience?: string | undefined;
    /** Further claims, e.g. the admin claim (`{ roles: ['vlogflow:admin'] }`). */
    claims?: Record<string, unknown>;
  } = {},
): Promise<string> {
  let token = new SignJWT(options.claims ?? {})
    .setProtectedHeader({ alg: algorithm })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '12h');
  if (options.issuer) token = token.setIssuer(options.issuer);
  if (options.audience) token = token.setAudience(options.audience);
  return token.sign(new TextEncoder().encode(secret));
}

/** Each way a token is refused, one stable error code each (docs/api.md, "Users, ownership and limits"). */
export type TokenProblem =
  /** Not a JWT, a signature that does not verify, an algorithm not accepted (`none`). */
  | 'TOKEN_INVALID'
  | 'TOKEN_EXPIRED'
  /** `nbf` or `iat` later than now (beyond the clock skew). */
  | 'TOKEN_NOT_YET_VALID'
  | 'TOKEN_EXPIRY_MISSING'
  /** `exp` further from `iat` (or from now, without `iat`) than AUTH_MAX_TOKEN_LIFETIME_SECONDS. */
  | 'TOKEN_LIFETIME_TOO_LONG'
  /** `sub` missing, not a string, or not a user id (isValidUserId). */
  | 'TOKEN_SUBJECT_INVALID'
  /** A wrong issuer or audience, or a registered claim of the wrong JSON type. */
  | 'TOKEN_CLAIM_INVALID'
  /** The identity provider's keys could not be fetched: not the caller's fault. */
  | 'AUTH_UNAVAILABLE';

export class TokenError extends Error {
  constructor(
    readonly problem: TokenProblem,
    message: string,
  ) {
    super(message);
  }
}

/** Who a valid token speaks for. */
export interface Caller {
  /** The token's `sub`. */
  userId: string;
  /** Whether it carries the admin claim (AUTH_ADMIN_CLAIM = AUTH_ADMIN_CLAIM_VALUE). */
  admin: boolean;
}

/** Returns the caller of a valid token; throws a TokenError saying what is wrong. */
export type TokenVerifier = (token: string) => Promise<Caller>;

/**
 * Whether a claim names `value`: equal to it, an array holding it, or a space-separated list
 * naming it (an OAuth `scope`). Any other shape names nothing.
 */
export function claimNames(claim: unknown, value: string): boolean {
  if (Array.isArray(claim)) return claim.includes(value);
  return typeof claim === 'string' && claim.split(' ').includes(value);
}

/** What jose reports when the key set cannot be fetched or read (network failures are not JOSE errors). */
const unavailableCodes = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID', 'ERR_JOSE_GENERIC']);

function toTokenError(error: unknown): unknown {
  if (error instanceof TokenError) return error;
  if (error instanceof errors.JWTExpired) {
    return new TokenError('TOKEN_EXPIRED', 'The token has expired (its exp is past)');
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf' && error.reason === 'check_failed') {
      return new TokenError('TOKEN_NOT_YET_VALID', 'The token is not valid yet (its nbf is ahead)');
    }
    return new TokenError(
      'TOKEN_CLAIM_INVALID',
      `The token's ${error.claim} claim is not accepted: ${error.message}`,
    );
  }
  if (error instanceof errors.JOSEError) return malformedToken();
  return error;
}

function malformedToken(): TokenError {
  return new TokenError('TOKEN_INVALID', 'The token is malformed or its signature does not verify');
}

/**
 * A JWT as JWS Compact Serialization writes it: three base64url parts without padding. jose's
 * decoder takes a padded or altered one as the token it decodes to, so one token would have
 * many spellings, each a key of its own in the accepted tokens.
 */
const compactJws = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * Whether each part is the one spelling of its bytes: a part's last character may carry spare
 * bits the decoder drops, so a signature ending in any of up to 16 characters verified alike.
 */
function isCanonicalJws(token: string): boolean {
  return token
    .split('.')
    .every((part) => Buffer.from(part, 'base64url').toString('base64url') === part);
}

/** Registered claims jose does not type-check (it checks exp, nbf and iat are numbers). */
function claimTypeProblem(payload: JWTPayload): string | null {
  for (const claim of ['iss', 'jti'] as const) {
    if (payload[claim] !== undefined && typeof payload[claim] !== 'string') {
      return `The token's ${claim} claim must be a string`;
    }
  }
  const { aud } = payload;
  if (
    aud !== undefined &&
    typeof aud !== 'string' &&
    !(Array.isArray(aud) && aud.every((item) => typeof item === 'string'))
  ) {
    return "The token's aud claim must be a string or an array of strings";
  }
  return null;
}

/** The rules jose leaves to us, on a token whose signature, iss, aud, exp and nbf it accepted. */
function checkClaims(payload: JWTPayload, policy: TokenPolicy, now: number): string {
  const typeProblem = claimTypeProblem(payload);
  if (typeProblem) throw new TokenError('TOKEN_CLAIM_INVALID', typeProblem);
  if (!isValidUserId(payload.sub)) {
    throw new TokenError(
      'TOKEN_SUBJECT_INVALID',
      payload.sub === undefined
        ? 'The token has no sub claim (the user id)'
        : `The token's sub claim (the user id) must be ${userIdRule}`,
    );
  }
  const { exp, iat } = payload;
  if (exp === undefined) {
    throw new TokenError('TOKEN_EXPIRY_MISSING', 'The token has no exp claim; tokens must expire');
  }
  if (iat !== undefined && iat > now + policy.clockSkewSeconds) {
    throw new TokenError('TOKEN_NOT_YET_VALID', 'The token is not valid yet (its iat is ahead)');
  }
  const lifetime = iat === undefined ? exp - now - policy.clockSkewSeconds : exp - iat;
  if (lifetime > policy.maxLifetimeSeconds) {
    throw new TokenError(
      'TOKEN_LIFETIME_TOO_LONG',
      `${
        iat === undefined
          ? `The token's exp is ${exp - now} s from now and it has no iat`
          : `The token's lifetime (exp - iat) is ${lifetime} s`
      }; at most ${policy.maxLifetimeSeconds} s is accepted`,
    );
  }
  return payload.sub;
}

interface TokenPolicy {
  maxLifetimeSeconds: number;
  clockSkewSeconds: number;
}

/**
 * How the API verifies bearer tokens. With AUTH_JWKS_URL, against the identity provider's
 * published keys (fetched once, refetched when an unknown key id appears) with the required
 * issuer and audience; otherwise HS256 with the service's secret (issuer and audience checked
 * when configured). Either way the same claim rules hold: a `sub` that is a valid user id, an
 * `exp` at most AUTH_MAX_TOKEN_LIFETIME_SECONDS after `iat`, and `exp`, `nbf` and `iat` checked
 * with AUTH_CLOCK_SKEW_SECONDS of tolerance.
 */
export function createTokenVerifier(
  config: Pick<
    Config,
    | 'AUTH_JWKS_URL'
    | 'AUTH_ISSUER'
    | 'AUTH_AUDIENCE'
    | 'AUTH_MAX_TOKEN_LIFETIME_SECONDS'
    | 'AUTH_CLOCK_SKEW_SECONDS'
    | 'AUTH_ADMIN_CLAIM'
    | 'AUTH_ADMIN_CLAIM_VALUE'
  >,
  secret: string,
): TokenVerifier {
  const policy: TokenPolicy = {
    maxLifetimeSeconds: config.AUTH_MAX_TOKEN_LIFETIME_SECONDS,
    clockSkewSeconds: config.AUTH_CLOCK_SKEW_SECONDS,
  };
  const options = {
    clockTolerance: policy.clockSkewSeconds,
    ...(config.AUTH_ISSUER ? { issuer: config.AUTH_ISSUER } : {}),
    ...(config.AUTH_AUDIENCE ? { audience: config.AUTH_AUDIENCE } : {}),
  };
  const verify = config.AUTH_JWKS_URL
    ? (() => {
        const keys = createRemoteJWKSet(new URL(config.AUTH_JWKS_URL), {
          timeoutDuration: 5_000,
          cooldownDuration: 30_000,
        });
        // Only a failure to fetch the keys is the provider's; a token naming a key it does not
        // have is the caller's.
        const key: JWTVerifyGetKey = async (header, token) => {
          try {
            return await keys(header, token);
          } catch (error) {
            if (error instanceof errors.JOSEError && !unavailableCodes.has(error.code)) throw error;
            throw new TokenError(
              'AUTH_UNAVAILABLE',
              "The identity provider's signing keys could not be fetched; try again shortly",
            );
          }
        };
        return (token: string) =>
          jwtVerify(token, key, {
            ...options,
            algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'],
          });
      })()
    : (() => {
        // A key object made once: given bytes, jose imports the key again for every token.
        const key = createSecretKey(Buffer.from(secret, 'utf8'));
        return (token: string) => jwtVerify(token, key, { ...options, algorithms: [algorithm] });
      })();
  const accepted = acceptedTokens(policy.clockSkewSeconds);
  return async (token) => {
    if (!compactJws.test(token)) throw malformedToken();
    const now = Math.floor(Date.now() / 1000);
    const known = accepted.get(token, now);
    if (known) return known;
    // Only a token verified is remembered, so a canonical one: the check is paid once a minute.
    if (!isCanonicalJws(token)) throw malformedToken();
    try {
      const { payload } = await verify(token);
      const caller = {
        userId: checkClaims(payload, policy, now),
        admin: claimNames(payload[config.AUTH_ADMIN_CLAIM], config.AUTH_ADMIN_CLAIM_VALUE),
      };
      accepted.add(token, caller, payload.exp!, now);
      return caller;
    } catch (error) {
      throw toTokenError(error);
    }
  };
}

/** Longest a token once verified is taken without verifying it again. */
const acceptedTokenSeconds = 60;
/** Most tokens remembered; past it the oldest are forgotten (and verified again on next use). */
const acceptedTokenLimit = 10_000;

/**
 * Tokens verified in the last minute, so a client polling its job every second pays for the
 * signature once a minute rather than on every read. An entry never outlives its token's
 * expiry, and lasts a minute at most, so a signing key the identity provider withdraws stops
 * being accepted within a minute, as with the key set's own refetch.
 */
function acceptedTokens(clockSkewSeconds: number) {
  const tokens = new Map<string, { caller: Caller; until: number }>();
  return {
    get(token: string, now: number): Caller | undefined {
      const entry = tokens.get(token);
      if (!entry) return undefined;
      if (now > entry.until) {
        tokens.delete(token);
        return undefined;
      }
      return entry.caller;
    },
    add(token: string, caller: Caller, exp: number, now: number): void {
      if (tokens.size >= acceptedTokenLimit) tokens.delete(tokens.keys().next().value!);
      tokens.set(token, {
        caller,
        until: Math.min(exp + clockSkewSeconds, now + acceptedTokenSeconds),
      });
    },
  };
}
