// Prints a development API token: `npm run token -- <user id> [expiry, e.g. 12h] [--admin]`;
// `--admin` adds the admin claim (AUTH_ADMIN_CLAIM = AUTH_ADMIN_CLAIM_VALUE) of operators.
import { decodeJwt } from 'jose';
import { isValidUserId, mintToken, resolveJwtSecret, userIdRule } from '../src/auth.js';
import { loadConfig } from '../src/config.js';

function refuse(message: string): never {
  console.error(message);
  process.exit(2);
}

const args = process.argv.slice(2);
const admin = args.includes('--admin');
const [userId, expiresIn = '12h'] = args.filter((arg) => arg !== '--admin');
if (!userId) refuse('usage: npm run token -- <user id> [expiry, e.g. 12h] [--admin]');
if (!isValidUserId(userId)) refuse(`The user id must be ${userIdRule}`);
const config = loadConfig();
if (config.AUTH_JWKS_URL) {
  refuse('AUTH_JWKS_URL is set: tokens come from your identity provider, not this script');
}
const token = await mintToken(await resolveJwtSecret(config), userId, {
  expiresIn,
  issuer: config.AUTH_ISSUER,
  audience: config.AUTH_AUDIENCE,
  ...(admin && { claims: { [config.AUTH_ADMIN_CLAIM]: [config.AUTH_ADMIN_CLAIM_VALUE] } }),
}).catch((error: Error) =>
  refuse(`Cannot mint a token expiring in "${expiresIn}": ${error.message}`),
);
const { exp = 0, iat = 0 } = decodeJwt(token);
if (exp - iat > config.AUTH_MAX_TOKEN_LIFETIME_SECONDS) {
  refuse(
    `A token living ${exp - iat} s would be refused: AUTH_MAX_TOKEN_LIFETIME_SECONDS is ${config.AUTH_MAX_TOKEN_LIFETIME_SECONDS}`,
  );
}
console.log(token);
