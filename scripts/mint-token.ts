// Prints a development API token: `npm run token -- <user id> [expiry, e.g. 12h] [--admin]`;
// `--admin` adds the admin claim (AUTH_ADMIN_CLAIM = AUTH_ADMIN_CLAIM_VALUE) of operators.
import { decodeJwt } from 'jose';
import { isValidUserId, mintToken, resolveJwtSecret, userIdRule } from '../src/auth.js';
import { parseCommandLine, runCommand, UsageError } from '../src/command-line.js';
import { ConfigError, loadConfig } from '../src/config.js';

const usage = 'usage: npm run token -- <user id> [expiry, e.g. 12h] [--admin]';

runCommand(usage, async () => {
  const { values, positionals } = parseCommandLine({
    allowPositionals: true,
    options: { admin: { type: 'boolean', default: false } },
  });
  const [userId, expiresIn = '12h', ...extra] = positionals;
  if (!userId) throw new UsageError('no user id given');
  if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  if (!isValidUserId(userId)) throw new UsageError(`The user id must be ${userIdRule}`);
  const config = loadConfig();
  if (config.AUTH_JWKS_URL) {
    throw new ConfigError(
      'AUTH_JWKS_URL is set: tokens come from your identity provider, not this script',
    );
  }
  const token = await mintToken(await resolveJwtSecret(config), userId, {
    expiresIn,
    issuer: config.AUTH_ISSUER,
    audience: config.AUTH_AUDIENCE,
    ...(values.admin && {
      claims: { [config.AUTH_ADMIN_CLAIM]: [config.AUTH_ADMIN_CLAIM_VALUE] },
    }),
  }).catch((error: Error) => {
    throw new UsageError(`Cannot mint a token expiring in "${expiresIn}": ${error.message}`);
  });
  const { exp = 0, iat = 0 } = decodeJwt(token);
  if (exp <= iat) {
    throw new UsageError(`A token expiring in "${expiresIn}" would be expired already`);
  }
  if (exp - iat > config.AUTH_MAX_TOKEN_LIFETIME_SECONDS) {
    throw new UsageError(
      `A token living ${exp - iat} s would be refused: AUTH_MAX_TOKEN_LIFETIME_SECONDS is ${config.AUTH_MAX_TOKEN_LIFETIME_SECONDS}`,
    );
  }
  console.log(token);
});
