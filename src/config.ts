import path from 'node:path';
import { z } from 'zod';

const port = z.coerce.number().int().min(1).max(65_535);
const positiveInt = z.coerce.number().int().positive();
const optionalString = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional();

/**
 * Every environment variable the service reads, with its default. `.env.example` documents
 * the same list; keep the two together.
 */
const configSchema = z.object({
  /** `production` turns off the development conveniences (generated JWT secret). */
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  /** pino level for both processes. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Folder for embedded state: PGlite database, Temporal dev server SQLite file, dev JWT secret. */
  DATA_DIR: z.string().default('.data'),

  /** Interface and port the API listens on. */
  API_HOST: z.string().default('127.0.0.1'),
  API_PORT: port.default(3000),
  /** Largest JSON request body accepted, in bytes. */
  API_BODY_LIMIT_BYTES: positiveInt.default(1_048_576),
  /** Time allowed to receive a whole request before the server answers 408. */
  API_REQUEST_TIMEOUT_MS: positiveInt.default(30_000),

  /** PostgreSQL connection string. Unset: an embedded PGlite database under DATA_DIR. */
  DATABASE_URL: optionalString.pipe(
    z
      .url({ protocol: /^postgres(ql)?$/, error: 'expected a postgres:// or postgresql:// URL' })
      .optional(),
  ),

  /** host:port of the Temporal frontend. Unset: `npm start` runs a dev server itself. */
  TEMPORAL_ADDRESS: optionalString,
  TEMPORAL_NAMESPACE: z.string().min(1).default('vlogflow'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('vlogflow'),
  /** Ports of the dev server `npm start` runs when TEMPORAL_ADDRESS is unset. */
  TEMPORAL_DEV_PORT: port.default(7233),
  TEMPORAL_DEV_UI_PORT: port.default(8233),
  /** Where operators open the Web UI; printed at start. Defaults to the dev server's UI. */
  TEMPORAL_UI_URL: optionalString,

  /** HS256 secret for API tokens (32+ characters). Unset outside production: generated once into DATA_DIR. */
  AUTH_JWT_SECRET: optionalString.pipe(
    z.string().min(32, { error: 'must be at least 32 characters' }).optional(),
  ),

  /** Time running activities get to finish or heartbeat their cancellation when a worker stops. */
  WORKER_SHUTDOWN_GRACE_MS: positiveInt.default(30_000),
});

export type Config = z.infer<typeof configSchema> & { dataDir: string };

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses the environment once; throws a ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const variable = issue.path.join('.');
      const got = env[variable];
      return `${variable}: ${issue.message}${got === undefined ? '' : ` (got ${JSON.stringify(got)})`}`;
    });
    throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const config = parsed.data;
  if (config.NODE_ENV === 'production' && !config.AUTH_JWT_SECRET) {
    throw new ConfigError(
      'Invalid configuration:\n  AUTH_JWT_SECRET: required when NODE_ENV=production',
    );
  }
  return { ...config, dataDir: path.resolve(config.DATA_DIR) };
}

/**
 * The API and the worker run as separate processes only against shared services: the embedded
 * database lives inside one process and the dev server is started by `npm start`.
 */
export function requireSharedServices(config: Config, processName: string): void {
  const missing = (['DATABASE_URL', 'TEMPORAL_ADDRESS'] as const).filter((name) => !config[name]);
  if (missing.length > 0) {
    throw new ConfigError(
      `Invalid configuration:\n  ${missing
        .map(
          (name) =>
            `${name}: required when the ${processName} runs as its own process (use \`npm start\` for the all-in-one embedded setup)`,
        )
        .join('\n  ')}`,
    );
  }
}
