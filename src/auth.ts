import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createRemoteJWKSet, errors, jwtVerify, SignJWT } from 'jose';
import type { Config } from './config.js';

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
  await mkdir(config.dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  // 'wx' fails if another process wrote the file first; then its secret is the one to use.
  await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' }).catch(
    (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    },
  );
  return (await readFile(file, 'utf8')).trim();
}

/** Signs an HS256 token for `userId`, with the issuer and audience the API requires if any. */
export async function mintToken(
  secret: string,
  userId: string,
  options: { expiresIn?: string; issuer?: string | undefined; audience?: string | undefined } = {},
): Promise<string> {
  let token = new SignJWT({})
    .setProtectedHeader({ alg: algorithm })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '12h');
  if (options.issuer) token = token.setIssuer(options.issuer);
  if (options.audience) token = token.setAudience(options.audience);
  return token.sign(new TextEncoder().encode(secret));
}

export type TokenProblem =
  | 'TOKEN_INVALID'
  | 'TOKEN_EXPIRED'
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

/** Returns the user id (`sub`) of a valid token; throws a TokenError saying what is wrong. */
export type TokenVerifier = (token: string) => Promise<string>;

const unavailableCodes = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID', 'ERR_JOSE_GENERIC']);

function toTokenError(error: unknown): TokenError {
  if (error instanceof TokenError) return error;
  if (error instanceof errors.JWTExpired)
    return new TokenError('TOKEN_EXPIRED', 'The token has expired');
  if (error instanceof errors.JWTClaimValidationFailed) {
    return new TokenError(
      'TOKEN_CLAIM_INVALID',
      `The token's ${error.claim} claim is not accepted (${error.reason})`,
    );
  }
  if (!(error instanceof errors.JOSEError) || unavailableCodes.has(error.code)) {
    return new TokenError(
      'AUTH_UNAVAILABLE',
      "The identity provider's signing keys could not be fetched; try again shortly",
    );
  }
  return new TokenError('TOKEN_INVALID', 'The token is malformed or its signature does not verify');
}

/**
 * How the API verifies bearer tokens. With AUTH_JWKS_URL, against the identity provider's
 * published keys (fetched once, refetched when an unknown key id appears) with the required
 * issuer and audience; otherwise HS256 with the service's secret (issuer and audience checked
 * when configured).
 */
export function createTokenVerifier(
  config: Pick<Config, 'AUTH_JWKS_URL' | 'AUTH_ISSUER' | 'AUTH_AUDIENCE'>,
  secret: string,
): TokenVerifier {
  const claims = {
    ...(config.AUTH_ISSUER ? { issuer: config.AUTH_ISSUER } : {}),
    ...(config.AUTH_AUDIENCE ? { audience: config.AUTH_AUDIENCE } : {}),
  };
  const verify = config.AUTH_JWKS_URL
    ? (() => {
        const keys = createRemoteJWKSet(new URL(config.AUTH_JWKS_URL), {
          timeoutDuration: 5_000,
          cooldownDuration: 30_000,
        });
        return (token: string) =>
          jwtVerify(token, keys, {
            ...claims,
            algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'],
          });
      })()
    : (() => {
        const key = new TextEncoder().encode(secret);
        return (token: string) => jwtVerify(token, key, { ...claims, algorithms: [algorithm] });
      })();
  return async (token) => {
    try {
      const { payload } = await verify(token);
      if (!payload.sub)
        throw new TokenError('TOKEN_INVALID', 'The token has no subject (sub) claim');
      return payload.sub;
    } catch (error) {
      throw toTokenError(error);
    }
  };
}
