// Prints a development API token: `npm run token -- <user id> [expiry, e.g. 12h]`.
import { mintToken, resolveJwtSecret } from '../src/auth.js';
import { loadConfig } from '../src/config.js';

const [userId, expiresIn = '12h'] = process.argv.slice(2);
if (!userId) {
  console.error('usage: npm run token -- <user id> [expiry, e.g. 12h]');
  process.exit(2);
}
const config = loadConfig();
if (config.AUTH_JWKS_URL) {
  console.error('AUTH_JWKS_URL is set: tokens come from your identity provider, not this script');
  process.exit(2);
}
console.log(
  await mintToken(await resolveJwtSecret(config), userId, {
    expiresIn,
    issuer: config.AUTH_ISSUER,
    audience: config.AUTH_AUDIENCE,
  }),
);
