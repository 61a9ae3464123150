import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { errors, jwtVerify, SignJWT } from 'jose';
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

export async function mintToken(
  secret: string,
  userId: string,
  expiresIn = '12h',
): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: algorithm })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(secret));
}

export type TokenProblem = 'TOKEN_INVALID' | 'TOKEN_EXPIRED';

export class TokenError extends Error {
  constructor(
    readonly problem: TokenProblem,
    message: string,
  ) {
    super(message);
  }
}

/** Returns the user id (`sub`) of a valid token; throws a TokenError saying what is wrong. */
export async function verifyToken(secret: string, token: string): Promise<string> {
  try {
    const { payload } = await jwtVerify(token, new TextEncoder().encode(secret), {
      algorithms: [algorithm],
    });
    if (!payload.sub) throw new TokenError('TOKEN_INVALID', 'The token has no subject (sub) claim');
    return payload.sub;
  } catch (error) {
    if (error instanceof TokenError) throw error;
    if (error instanceof errors.JWTExpired)
      throw new TokenError('TOKEN_EXPIRED', 'The token has expired');
    throw new TokenError(
      'TOKEN_INVALID',
      'The token is malformed or its signature does not verify',
    );
  }
}
