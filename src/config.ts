import { readFileSync } from 'node:fs';
import { isIP, isIPv6 } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSConfig } from '@temporalio/client';
import { z } from 'zod';
import './validation-messages.js';
import type { ProviderRetrySettings } from './jobs/contracts.js';
import { defaultMaxConcurrentMediaProcesses, type MediaProcessLimits } from './media/processes.js';
import {
  parseTaskQueueDomains,
  taskQueueDomains,
  type ActivityDomain,
  type TaskQueueDomain,
} from './capacity/task-queues.js';
import { storageKeyProblem } from './storage/object-storage.js';
import { decimalPattern } from './costs/money.js';
import { decimalText } from './decimal-text.js';

const port = decimalText(z.number().int().min(1).max(65_535));
const positive = z.number().int().positive();
const positiveInt = decimalText(positive);
const booleanFlag = z
  .enum(['true', 'false', '1', '0'], { error: 'expected true or false' })
  .transform((value) => value === 'true' || value === '1');
/** A signed URL's lifetime in seconds: at most 7 days, the longest S3-compatible stores sign for. */
const signedUrlSeconds = decimalText(positive.max(604_800));
/** Time an upload that has arrived may take to be inspected and start its job. */
const uploadStartMarginMs = 600_000;
/** An interface to listen on: a host name or an IP address. */
const hostName = z.string().refine((host) => isIP(host) !== 0 || URL.canParse(`http://${host}/`), {
  error: 'expected a host name or an IP address',
});
const optionalString = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional();
/** A port that may be left unset (or empty) for a default computed from other variables. */
const optionalPort = optionalString.pipe(port.optional());
/** A rate in tasks per second (fractions allowed: 0.5 is one every 2 s); unset: unlimited. */
const optionalRate = optionalString.pipe(
  decimalText(z.number().positive(), { fractions: true }).optional(),
);

/** An IP address, or a CIDR range of them (`10.0.0.0/8`, `fd00::/8`). */
function isAddressOrRange(entry: string): boolean {
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

/**
 * The proxies whose X-Forwarded-For the API believes: a number of hops, or the proxies'
 * addresses and ranges. Never every sender: a client could then write any address it liked.
 */
const trustedProxies = optionalString.transform((value, ctx) => {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 10) return Number(value);
  const entries = value.split(',').map((entry) => entry.trim());
  if (entries.every(isAddressOrRange)) return entries;
  ctx.addIssue({
    code: 'custom',
    message:
      'expected the number of proxies in front of the API, 1 to 10 (1 behind one load balancer), or a comma-separated list of their addresses and CIDR ranges',
  });
  return z.NEVER;
});

/** A decimal amount of money ("12.50"), kept as text: money is never a float. */
const moneyAmount = z.string().regex(decimalPattern, {
  error: 'expected a decimal amount such as 25 or 12.50 (at most 9 decimals)',
});
const priceOverrides = z
  .string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'expected JSON' });
      return z.NEVER;
    }
  })
  .pipe(
    z
      .record(
        z.string(),
        z.strictObject({
          inputTokens: moneyAmount.optional(),
          outputTokens: moneyAmount.optional(),
          videoSeconds: moneyAmount.optional(),
        }),
      )
      .superRefine((prices, ctx) => {
        for (const key of Object.keys(prices).filter((key) => !/^[a-z0-9-]+:[^:\s]+$/.test(key)))
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: `"${key}" is not a price key: use provider:model or provider:*`,
          });
      }),
  );

/** Whether every %-escape of a text decodes (OTLP header values are URL-encoded). */
function decodes(text: string): boolean {
  try {
    decodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Threads the embedded model computes with by default: the CPUs but one, 1 to 4. On a busy
 * machine llama.cpp's threads spin waiting for each other: measured here, one thread on two
 * shared cores generated ten times faster than two.
 */
function defaultEmbeddedModelThreads(): number {
  return Math.max(1, Math.min(4, os.availableParallelism() - 1));
}

/**
 * Every environment variable the service reads, with its default. docs/configuration.md
 * and `.env.example` document the same list (test/unit/config-docs.test.ts checks it).
 */

/** Most pixels in a photo by default (VLOG_MAX_IMAGE_PIXELS): 50 megapixels. */
export const defaultMaxImagePixels = 50_000_000;
export const configSchema = z.object({
  /** `production` turns off the development conveniences (generated JWT secret). */
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  /** pino level for both processes. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Folder for embedded state: PGlite database, Temporal dev server SQLite file, dev JWT secret. */
  DATA_DIR: z.string().trim().min(1).default('.data'),

  /** Interface and port the API listens on. */
  API_HOST: hostName.default('127.0.0.1'),
  API_PORT: port.default(3000),
  /**
   * The proxies in front of the API (load balancers) whose X-Forwarded-For names the client:
   * how many (1 behind one load balancer), or their addresses and CIDR ranges. Unset, a
   * request's client is its connection's address, which behind a proxy is the proxy's, in every
   * log line.
   */
  API_TRUST_PROXY: trustedProxies,
  /** Largest JSON request body accepted, in bytes (413 above). Uploads have VLOG_MAX_FILE_BYTES. */
  API_BODY_LIMIT_BYTES: positiveInt.default(1_048_576),
  /** Largest request line and headers together, in bytes (431 above). */
  API_MAX_HEADER_BYTES: decimalText(positive.min(1_024)).default(16_384),
  /**
   * Longest URL (path and query) of a request, in bytes (414 above); below API_MAX_HEADER_BYTES,
   * which the request line counts against too. The longest the API makes (a signed media or
   * stream link, a list's cursor) is under 1,500.
   */
  API_MAX_URL_BYTES: decimalText(positive.min(2_048)).default(8_192),
  /** Time allowed to receive a request's headers (408 after): cuts off clients that trickle them. */
  API_HEADERS_TIMEOUT_MS: positiveInt.default(10_000),
  /** Time allowed to receive a whole request (uploads included) before the server answers 408. */
  API_REQUEST_TIMEOUT_MS: positiveInt.default(600_000),
  /** A connection that sends nothing for this long is closed (a stalled upload ends here). */
  API_IDLE_TIMEOUT_MS: positiveInt.default(30_000),
  /** How long a keep-alive connection waits for its next request; keep it above a load balancer's idle timeout. */
  API_KEEP_ALIVE_TIMEOUT_MS: positiveInt.default(72_000),

  /**
   * Where a worker process (`npm run worker`) serves `GET /metrics` for Prometheus (port 0: any
   * free one, logged). The API, and `npm start`, serve it on API_PORT instead.
   */
  METRICS_HOST: hostName.default('127.0.0.1'),
  METRICS_PORT: decimalText(z.number().int().min(0).max(65_535)).default(9464),

  /**
   * OpenTelemetry tracing, off while both endpoints are unset: an OTLP/HTTP (protobuf) collector's
   * base URL, to which `/v1/traces` is added, or the full URL of its traces endpoint (which wins).
   */
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: optionalString.pipe(
    z.url({ protocol: /^https?$/ }).optional(),
  ),
  /** Headers sent with every export (a backend's API key): `name=value,name2=value2`, values URL-encoded. */
  OTEL_EXPORTER_OTLP_HEADERS: optionalString.pipe(
    z
      .string()
      .regex(/^\s*[^=,\s]+\s*=[^,]*(,\s*[^=,\s]+\s*=[^,]*)*$/, {
        error: 'expected name=value pairs separated by commas',
      })
      .refine(decodes, {
        error: 'a value is not URL-encoded',
      })
      .optional(),
  ),
  /** `service.name` of the spans every process exports. */
  OTEL_SERVICE_NAME: z.string().min(1).default('vlogflow'),

  /** PostgreSQL connection string. Unset: an embedded PGlite database under DATA_DIR. */
  DATABASE_URL: optionalString.pipe(
    z
      .url({ protocol: /^postgres(ql)?$/, error: 'expected a postgres:// or postgresql:// URL' })
      .optional(),
  ),

  /** host:port of the Temporal frontend. Unset: `npm start` runs a dev server itself. */
  TEMPORAL_ADDRESS: optionalString,
  // Trimmed as every other setting is: a name with a stray space is another namespace or queue,
  // one no worker polls.
  TEMPORAL_NAMESPACE: z.string().trim().min(1).default('vlogflow'),
  TEMPORAL_TASK_QUEUE: z.string().trim().min(1).default('vlogflow'),
  /**
   * Ports of the dev server `npm start` runs when TEMPORAL_ADDRESS is unset: its gRPC frontend,
   * Web UI (default: TEMPORAL_DEV_PORT + 1000), HTTP API (+ 10) and metrics endpoint (+ 2000).
   * Moving TEMPORAL_DEV_PORT moves the ones left unset with it.
   */
  TEMPORAL_DEV_PORT: port.default(7233),
  TEMPORAL_DEV_UI_PORT: optionalPort,
  TEMPORAL_DEV_HTTP_PORT: optionalPort,
  TEMPORAL_DEV_METRICS_PORT: optionalPort,
  /** Where operators open the Web UI; printed at start. Defaults to the dev server's UI. */
  TEMPORAL_UI_URL: optionalString.pipe(
    z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).optional(),
  ),
  /**
   * TLS to TEMPORAL_ADDRESS, verified against the system's CAs unless TEMPORAL_TLS_CA_FILE is
   * set. Unset: on when any other TEMPORAL_TLS_* variable or TEMPORAL_API_KEY is set.
   */
  TEMPORAL_TLS: optionalString.pipe(booleanFlag.optional()),
  /** PEM file of the CA that signed the frontend's certificate (a self-hosted cluster's own CA). */
  TEMPORAL_TLS_CA_FILE: optionalString,
  /** PEM files of the client certificate and its key for mutual TLS: both or neither. */
  TEMPORAL_TLS_CERT_FILE: optionalString,
  TEMPORAL_TLS_KEY_FILE: optionalString,
  /** Name the frontend's certificate is checked against, when it differs from TEMPORAL_ADDRESS's host. */
  TEMPORAL_TLS_SERVER_NAME: optionalString,
  /** A Temporal Cloud API key, sent as a bearer token on every call; implies TLS. */
  TEMPORAL_API_KEY: optionalString,

  /** HS256 secret for API tokens (32+ characters). Unset outside production: generated once into DATA_DIR. */
  AUTH_JWT_SECRET: optionalString.pipe(
    z.string().min(32, { error: 'must be at least 32 characters' }).optional(),
  ),

  /**
   * JWKS URL of an identity provider (Cognito, Auth0, Firebase…). Set: tokens are verified
   * against its keys (RS256/ES256…) instead of the HS256 secret.
   */
  AUTH_JWKS_URL: optionalString.pipe(z.url().optional()),
  /** Required `iss` of tokens (required with AUTH_JWKS_URL). */
  AUTH_ISSUER: optionalString,
  /** Required `aud` of tokens (required with AUTH_JWKS_URL). */
  AUTH_AUDIENCE: optionalString,
  /**
   * Longest lifetime of a token (`exp` - `iat`, or `exp` - now without `iat`) the API accepts;
   * a longer one is refused with TOKEN_LIFETIME_TOO_LONG. The start banner's token lives 12 h
   * or this, whichever is shorter.
   */
  AUTH_MAX_TOKEN_LIFETIME_SECONDS: positiveInt.default(86_400),
  /** Tolerance for clocks that disagree when checking a token's `exp`, `nbf` and `iat`. */
  AUTH_CLOCK_SKEW_SECONDS: decimalText(z.number().int().min(0).max(300)).default(60),
  /**
   * The token claim that makes its holder an operator (the admin routes: failure groups and
   * re-drives): a top-level claim whose value is AUTH_ADMIN_CLAIM_VALUE, an array holding it,
   * or a space-separated list naming it (an OAuth `scope`).
   */
  AUTH_ADMIN_CLAIM: z.string().min(1).default('roles'),
  /** The value of AUTH_ADMIN_CLAIM that makes a token an operator's. */
  AUTH_ADMIN_CLAIM_VALUE: z.string().min(1).default('vlogflow:admin'),

  /**
   * Default spending limits of a user, in USD, per UTC day and per UTC month: a submission whose
   * estimate would pass either is refused with 402. Unset: no limit. An admin sets a user's own
   * (`PUT /api/admin/budgets/:userId`).
   */
  USER_DAILY_BUDGET: optionalString.pipe(moneyAmount.optional()),
  USER_MONTHLY_BUDGET: optionalString.pipe(moneyAmount.optional()),
  /**
   * Prices that replace the price table's (`src/costs/price-table.ts`), as JSON keyed
   * `provider:model` or `provider:*`, e.g. `{"veo:*":{"videoSeconds":"0.35"}}`: decimal USD per
   * million tokens (inputTokens, outputTokens) or per second of video (videoSeconds).
   */
  COST_PRICES: optionalString.pipe(priceOverrides.optional()),
  /** Most jobs one user may have in flight (not yet completed, failed, cancelled or timed out). */
  USER_MAX_JOBS_IN_FLIGHT: positiveInt.default(20),
  /**
   * Most submissions (every API request but GET and HEAD: starts, uploads, cancels, retries) one
   * user may make per RATE_LIMIT_WINDOW_MS, counted in the database across API processes (429
   * with Retry-After above).
   */
  USER_RATE_LIMIT_REQUESTS: positiveInt.default(600),
  /**
   * Most reads (GET and HEAD) one user may make per RATE_LIMIT_WINDOW_MS on one API process,
   * counted in its memory so a status poll writes nothing (429 with Retry-After above). The
   * default is twice what a client makes that reads each of the USER_MAX_JOBS_IN_FLIGHT jobs it
   * may have running every JOB_POLL_INTERVAL_SECONDS, as the poll hints say (600 a minute): at
   * 600, such a client was refused as soon as it also listed its jobs.
   */
  USER_READ_RATE_LIMIT_REQUESTS: positiveInt.default(1200),
  RATE_LIMIT_WINDOW_MS: positiveInt.default(60_000),
  /** Poll-interval hint (X-Poll-Interval) on the read of a job that is running. */
  JOB_POLL_INTERVAL_SECONDS: positiveInt.default(2),
  /** Poll-interval hint (X-Poll-Interval) on the read of a job waiting to start: pending or queued. */
  JOB_PENDING_POLL_INTERVAL_SECONDS: positiveInt.default(5),
  /**
   * Poll-interval hint (X-Poll-Interval) on the read of a job waiting for a provider's quota
   * (its phase `waiting for … quota (…)`): such waits last minutes to hours.
   */
  JOB_WAITING_POLL_INTERVAL_SECONDS: positiveInt.default(30),

  /**
   * Time the API waits for a job's workflow to accept or refuse a cancel or retry; with no worker
   * polling, the request answers 503 JOB_CONTROL_TIMEOUT after it.
   */
  JOB_CONTROL_TIMEOUT_MS: positiveInt.default(10_000),

  /** Pause between reads of the job event log while progress streams are open (latency bound). */
  EVENT_STREAM_POLL_MS: positiveInt.default(250),
  /**
   * Pause between `keepalive` events on a progress stream; a client that takes none of its writes
   * for two of them is dropped.
   */
  EVENT_STREAM_KEEPALIVE_MS: positiveInt.default(15_000),
  /** How long a signed progress-stream link (for a browser's EventSource) opens its stream. */
  EVENT_STREAM_LINK_TTL_SECONDS: positiveInt.default(900),
  /**
   * Most progress streams one user may hold open on one API process (429 TOO_MANY_STREAMS
   * above). A stream of a job in flight stays open and one of an ended job closes at once, so the
   * default is USER_MAX_JOBS_IN_FLIGHT's: a stream for each job a user may have running; more
   * (a second tab on the same jobs) fall back to polling.
   */
  EVENT_STREAM_MAX_PER_USER: positiveInt.default(20),
  /**
   * Most progress streams one API process holds open in all (503 STREAM_CAPACITY_REACHED
   * above). Each is a socket: the default is a quarter of a 20,000 file descriptor limit, which
   * leaves the rest to other requests, the database and Temporal (keep it well below the
   * process's `ulimit -n`), and keeps the event log's poll to ten queries a round.
   */
  EVENT_STREAM_MAX_OPEN: positiveInt.default(5_000),

  /**
   * Renderings of the API's `/metrics` a second; past them a scrape gets the latest one. The
   * route answers whoever reaches the API's port, and each rendering holds the event loop
   * every request shares; Prometheus scrapes every few seconds.
   */
  API_METRICS_RENDERS_PER_SECOND: positiveInt.default(4),

  /** Time running activities get to finish or heartbeat their cancellation when a worker stops. */
  WORKER_SHUTDOWN_GRACE_MS: positiveInt.default(30_000),
  /**
   * Workflow runs a worker keeps in memory between their tasks (Temporal's sticky cache); a run
   * not kept is replayed from its history at its next task. Memory grows with it (about half a
   * megabyte a run), so it is bounded well below the SDK's default (thousands, sized from the
   * heap limit): thousands of jobs waiting on timers would otherwise each hold memory while they
   * wait, and a job that wakes minutes later has long left any cache. Fifty keep the jobs that
   * are moving; at least QUEUE_WORKFLOWS_SLOTS.
   */
  WORKER_MAX_CACHED_WORKFLOWS: decimalText(positive.min(2)).default(50),
  /**
   * The task queue domains (`src/capacity/task-queues.ts`) a worker process serves, comma
   * separated (`media,transfer`); `npm run worker -- --queues …` overrides it. Unset: all.
   */
  WORKER_QUEUES: optionalString,
  /**
   * Per domain: slots (tasks one worker runs at once), pollers (long polls one worker keeps
   * open) and, for activity queues, a rate (activity starts per second on the whole queue,
   * across every worker, enforced by the Temporal server, which lets short bursts through;
   * unset: unlimited). Video generation's rate also spaces Veo's requests that far apart, in
   * the database (the provider-quota governor). Media's slots are MEDIA_MAX_CONCURRENT_FFMPEG.
   * The workflows' slots are few: every workflow task of a worker runs on one thread, so a task
   * taken beyond what that thread gets through waits there in arrival order, while one left on
   * the server is handed out in fair turns between users (fairness keys): with thousands of
   * jobs waking, another user's fresh job goes first. Its pollers are fewer than its slots:
   * each holds a slot while it polls, and an eager start (the API and the worker in one
   * process) needs a free one. At least 2, as the SDK asks of a worker that caches runs (one
   * for its sticky queue, one for the shared one), a check it skips for the slots set here.
   */
  QUEUE_WORKFLOWS_SLOTS: decimalText(positive.min(2)).default(8),
  QUEUE_WORKFLOWS_POLLERS: positiveInt.default(4),
  QUEUE_ANALYSIS_SLOTS: positiveInt.default(20),
  QUEUE_ANALYSIS_POLLERS: positiveInt.default(2),
  QUEUE_ANALYSIS_RATE_PER_SECOND: optionalRate,
  QUEUE_VIDEO_GENERATION_SLOTS: positiveInt.default(20),
  QUEUE_VIDEO_GENERATION_POLLERS: positiveInt.default(2),
  QUEUE_VIDEO_GENERATION_RATE_PER_SECOND: optionalRate,
  /**
   * Unset: 50, or with the embedded model the requests its server works on at once, so the
   * rest wait on the Temporal server, handed out in fair turns between users, not in the
   * model's own first-come queue where one user's burst held everyone else's.
   */
  QUEUE_TEXT_GENERATION_SLOTS: optionalString.pipe(positiveInt.optional()),
  QUEUE_TEXT_GENERATION_POLLERS: positiveInt.default(4),
  QUEUE_TEXT_GENERATION_RATE_PER_SECOND: optionalRate,
  QUEUE_MEDIA_POLLERS: positiveInt.default(2),
  QUEUE_MEDIA_RATE_PER_SECOND: optionalRate,
  QUEUE_TRANSFER_SLOTS: positiveInt.default(10),
  QUEUE_TRANSFER_POLLERS: positiveInt.default(2),
  QUEUE_TRANSFER_RATE_PER_SECOND: optionalRate,
  QUEUE_STORAGE_SLOTS: positiveInt.default(20),
  QUEUE_STORAGE_POLLERS: positiveInt.default(2),
  QUEUE_STORAGE_RATE_PER_SECOND: optionalRate,
  QUEUE_INSPECTION_SLOTS: positiveInt.default(2),
  QUEUE_INSPECTION_POLLERS: positiveInt.default(1),
  QUEUE_INSPECTION_RATE_PER_SECOND: optionalRate,

  /** Base URL clients reach the API at, for links to media it serves. Default: http://API_HOST:API_PORT. */
  API_PUBLIC_URL: optionalString.pipe(z.url().optional()),
  /**
   * Lifetime of the video and thumbnail URLs in a vlog's status (at most 7 days, the longest an
   * S3-compatible store signs for).
   */
  MEDIA_URL_TTL_SECONDS: signedUrlSeconds.default(3_600),
  /** Lifetime of a vlog's share URL (at most 7 days on S3-compatible storage). */
  SHARE_URL_TTL_SECONDS: signedUrlSeconds.default(604_800),

  /** Where uploads and finished videos live: `local` (under STORAGE_LOCAL_DIR) or `s3` (R2, MinIO, AWS). */
  STORAGE_BACKEND: z.enum(['local', 's3']).default('local'),
  /** Folder of the local storage backend. Default: DATA_DIR/storage. */
  STORAGE_LOCAL_DIR: optionalString,
  /** S3-compatible endpoint, e.g. https://<account>.r2.cloudflarestorage.com. */
  S3_ENDPOINT: optionalString.pipe(z.url().optional()),
  S3_REGION: z.string().default('auto'),
  S3_BUCKET: optionalString,
  S3_ACCESS_KEY_ID: optionalString,
  S3_SECRET_ACCESS_KEY: optionalString,
  /** Path-style addressing (MinIO and most emulators need it). */
  S3_FORCE_PATH_STYLE: booleanFlag.default(false),
  /** Public base URL of the bucket (an R2 custom domain); unset: presigned URLs. */
  S3_PUBLIC_BASE_URL: optionalString.pipe(z.url().optional()),

  /**
   * Who analyses the media and makes the video: `local` (ffmpeg on the worker, no cloud account),
   * `google` (Gemini and Veo), or `auto`: google when GEMINI_API_KEY, VERTEX_PROJECT or
   * VEO_OUTPUT_GCS_URI is set, local otherwise.
   */
  VLOG_PROVIDER: z.enum(['auto', 'local', 'google']).default('auto'),
  /** Height of a local render in pixels for 16:9 (its width for 9:16): 720 is 1280×720 or 720×1280. */
  LOCAL_VIDEO_HEIGHT: decimalText(
    positive
      .min(144)
      .max(2160)
      .refine((value) => value % 2 === 0, { error: 'must be even' }),
  ).default(720),
  /**
   * Most ffmpeg/ffprobe processes of local analyses and renders one worker runs at once; more
   * wait their turn, and the worker takes at most this many of them from Temporal at a time. An
   * upload's ffprobe reads are bounded by QUEUE_INSPECTION_SLOTS instead, never waiting behind them.
   * Default: the CPU count minus one, at least 1.
   */
  MEDIA_MAX_CONCURRENT_FFMPEG: z.preprocess(
    (value) => (value === '' ? undefined : value),
    decimalText(positive.max(256)).default(defaultMaxConcurrentMediaProcesses()),
  ),
  /** Nice value ffmpeg and ffprobe run at (0 normal … 19 lowest), so renders yield to requests. */
  MEDIA_FFMPEG_NICE: decimalText(z.number().int().min(0).max(19)).default(10),

  /** Gemini API key for media analysis; unset: analysis goes through Vertex AI. */
  GEMINI_API_KEY: optionalString,
  /** Override of the Gemini API endpoint (tests, proxies). */
  GEMINI_BASE_URL: optionalString.pipe(z.url().optional()),
  GEMINI_MODEL: z.string().default('gemini-2.5-flash'),
  /** Google Cloud project for Vertex AI (Veo, and analysis when GEMINI_API_KEY is unset). */
  VERTEX_PROJECT: optionalString,
  VERTEX_LOCATION: z.string().default('us-central1'),
  /** Override of the Vertex AI endpoint (tests, proxies). */
  VERTEX_BASE_URL: optionalString.pipe(z.url().optional()),
  /** A fixed OAuth access token for Vertex AI; unset: Application Default Credentials. */
  VERTEX_ACCESS_TOKEN: optionalString,
  VEO_MODEL: z.string().default('veo-3.1-fast-generate-001'),
  /** gs://bucket/prefix Veo writes generated videos under; the prefix is a storage key. */
  VEO_OUTPUT_GCS_URI: optionalString.pipe(
    z
      .string()
      .regex(/^gs:\/\/[^/]+(\/.*)?$/, { error: 'expected gs://bucket/prefix' })
      .refine(
        (uri) => {
          const prefix = uri.replace(/^gs:\/\/[^/]+\/?/, '').replace(/\/$/, '');
          return prefix === '' || storageKeyProblem(prefix) === null;
        },
        {
          error:
            'the prefix must be a storage key (segments of letters, digits, ".", "_" and "-", none empty or starting with ".")',
        },
      )
      .optional(),
  ),
  /** Override of the Cloud Storage endpoint (fake-gcs-server in tests). */
  GCS_API_ENDPOINT: optionalString.pipe(z.url().optional()),

  /**
   * The language model behind AI generation jobs: `gemini` (GEMINI_API_KEY or VERTEX_PROJECT),
   * `openai` (any server speaking OpenAI's chat-completions protocol, at OPENAI_BASE_URL),
   * `embedded` (a tiny local model the worker runs, installed into .local/ on first use), `none`
   * (AI jobs refused with 503), or `auto`: openai when OPENAI_BASE_URL is set, else gemini when
   * GEMINI_API_KEY or VERTEX_PROJECT is, else embedded.
   */
  AI_PROVIDER: z.enum(['auto', 'gemini', 'openai', 'embedded', 'none']).default('auto'),
  /** Base URL of an OpenAI-compatible API, up to `/v1` (Ollama: http://127.0.0.1:11434/v1). Default with AI_PROVIDER=openai: OpenAI's. */
  OPENAI_BASE_URL: optionalString.pipe(z.url().optional()),
  /** Its API key; unset for servers that want none. */
  OPENAI_API_KEY: optionalString,
  /** The model to ask (required with the openai provider). */
  OPENAI_MODEL: optionalString,
  /** Longest one request to it (or to the embedded model) may take, streamed answer included, before it is abandoned and retried. */
  OPENAI_REQUEST_TIMEOUT_MS: positiveInt.default(120_000),
  /** A GGUF file the embedded provider serves instead of the tiny model it installs. */
  EMBEDDED_MODEL_FILE: optionalString,
  /** Threads the embedded model computes with. Default: the CPU count minus one, 1 to 4. */
  EMBEDDED_MODEL_THREADS: z.preprocess(
    (value) => (value === '' ? undefined : value),
    decimalText(positive.max(64)).default(defaultEmbeddedModelThreads()),
  ),

  /** Most media files in one vlog request. */
  VLOG_MAX_FILES: decimalText(positive.max(50)).default(10),
  /** Largest media file accepted, in bytes (413 above). */
  VLOG_MAX_FILE_BYTES: positiveInt.default(200 * 1024 * 1024),
  /**
   * Most vlog uploads one user may have in progress on one API process (429 TOO_MANY_UPLOADS
   * above, before the body is read). Each may hold VLOG_MAX_FILES × VLOG_MAX_FILE_BYTES of
   * storage until it ends and is no job yet, so USER_MAX_JOBS_IN_FLIGHT does not bound it.
   */
  VLOG_MAX_UPLOADS_IN_PROGRESS_PER_USER: positiveInt.default(3),
  /** Longest clip accepted, in seconds (422 MEDIA_TOO_LONG above), read with ffprobe at upload. */
  VLOG_MAX_VIDEO_SECONDS: decimalText(positive.max(86_400)).default(1_800),
  /** Longest side of a clip accepted, in pixels (422 MEDIA_RESOLUTION_TOO_HIGH above). */
  VLOG_MAX_VIDEO_SIDE: decimalText(positive.min(144).max(16_384)).default(4_096),
  /** Most pixels in a photo accepted (422 MEDIA_RESOLUTION_TOO_HIGH above): 50 megapixels. */
  VLOG_MAX_IMAGE_PIXELS: decimalText(positive.min(10_000).max(1_000_000_000)).default(
    defaultMaxImagePixels,
  ),
  /**
   * Time a vlog attempt may take before it fails with VLOG_DEADLINE_EXCEEDED, its waits for
   * provider quota (Veo's line, a 429's cool-down) not counted.
   */
  VLOG_DEADLINE_MS: positiveInt.default(30 * 60_000),
  /** How long a failed (or timed-out) job stays open to a retry. */
  JOB_RETRY_WINDOW_MS: positiveInt.default(7 * 24 * 3_600_000),
  /**
   * How long a vlog's uploads and outputs (video, thumbnail, generated copies) are kept after it
   * ends; a failed or timed-out vlog keeps them at least as long as it can be retried
   * (JOB_RETRY_WINDOW_MS). 0: the next sweep deletes them. Jobs in flight are never swept.
   */
  MEDIA_RETENTION_MS: decimalText(
    z
      .number()
      .int()
      .min(0)
      .max(3_650 * 24 * 3_600_000),
  ).default(30 * 24 * 3_600_000),
  /**
   * Age at which the media sweep deletes the files of an upload that never became a job (its
   * API died mid-request). At least API_REQUEST_TIMEOUT_MS + 10 min: an upload may take that
   * long to arrive, be inspected and start its job.
   */
  UPLOAD_ORPHAN_AGE_MS: decimalText(
    z
      .number()
      .int()
      .min(60_000)
      .max(3_650 * 24 * 3_600_000),
  ).default(3_600_000),
  /** Pause between runs of the media sweep, a Temporal Schedule every worker start keeps current. */
  MEDIA_SWEEP_INTERVAL_MS: decimalText(
    z
      .number()
      .int()
      .min(1_000)
      .max(7 * 24 * 3_600_000),
  ).default(3_600_000),
  /**
   * Pause between runs of the job reconciler, a Temporal Schedule every worker start keeps
   * current: it ends the jobs whose workflow was closed outside its code (terminated, timed out
   * on the server) and moves reset jobs to their new run.
   */
  JOB_RECONCILE_INTERVAL_MS: decimalText(
    z
      .number()
      .int()
      .min(1_000)
      .max(24 * 3_600_000),
  ).default(30_000),
  /** A job in flight whose row has not changed for this long is checked against its workflow. */
  JOB_RECONCILE_STALE_MS: decimalText(
    z
      .number()
      .int()
      .min(0)
      .max(24 * 3_600_000),
  ).default(30_000),
  /** Pause between checks of a running video generation (durable timer, no worker slot held). */
  VIDEO_POLL_INTERVAL_MS: positiveInt.default(15_000),
  /**
   * Most Veo generations running at once, across every worker (each holds a lease in the
   * database from its submission until a check sees it end); more jobs wait their turn, in
   * turns per user, showing their place in line.
   */
  VEO_MAX_CONCURRENT_OPERATIONS: positiveInt.default(10),
  /**
   * How long a vlog whose Veo submission got no answer (its worker killed, its request timed
   * out) looks for the video Veo may be writing all the same before it submits again: at least
   * as long as a generation takes, or the vlog may pay for two.
   */
  VEO_UNANSWERED_SUBMISSION_WAIT_MS: positiveInt.default(900_000),
  /** Pause before a job waiting for a provider lease asks again (longer further back in line). */
  PROVIDER_QUOTA_RECHECK_MS: positiveInt.default(10_000),
  /**
   * How long every worker leaves a provider alone after it answered 429 without a retry delay
   * (RetryInfo or Retry-After); with one, that delay.
   */
  PROVIDER_RATE_LIMIT_COOLDOWN_MS: positiveInt.default(30_000),
  /** Time an AI job attempt may take before it ends `timeout`. */
  AI_JOB_TIMEOUT_MS: positiveInt.default(300_000),
  /**
   * An AI generation activity that sends no heartbeat for this long is declared lost and retried
   * (it heartbeats every 3 s). Above 10 s, a job on a lost worker resumes later than 15 s.
   */
  AI_JOB_HEARTBEAT_TIMEOUT_MS: decimalText(positive.min(5_000).max(60_000)).default(10_000),
  /** Longest a single Gemini or Vertex request may take before it is abandoned and retried. */
  PROVIDER_REQUEST_TIMEOUT_MS: positiveInt.default(120_000),
  /**
   * Backoff for transient provider failures (429, 5xx): first wait, longest wait (at least the
   * first), attempts.
   */
  PROVIDER_RETRY_INITIAL_MS: positiveInt.default(1_000),
  PROVIDER_RETRY_MAX_MS: positiveInt.default(600_000),
  PROVIDER_RETRY_ATTEMPTS: decimalText(positive.max(20)).default(3),
});

/** Every port the local dev server opens, each with the variable that sets it. */
export interface TemporalDevPorts {
  grpc: number;
  ui: number;
  http: number;
  metrics: number;
}

export const temporalDevPortVariables = {
  grpc: 'TEMPORAL_DEV_PORT',
  ui: 'TEMPORAL_DEV_UI_PORT',
  http: 'TEMPORAL_DEV_HTTP_PORT',
  metrics: 'TEMPORAL_DEV_METRICS_PORT',
} as const satisfies Record<keyof TemporalDevPorts, string>;

const temporalDevPortOffsets: Record<keyof TemporalDevPorts, number> = {
  grpc: 0,
  ui: 1_000,
  http: 10,
  metrics: 2_000,
};

export type Config = z.infer<typeof configSchema> & {
  dataDir: string;
  temporalDevPorts: TemporalDevPorts;
  /** Scratch folder of local renders on the worker's disk: DATA_DIR/render-work. */
  renderWorkDir: string;
  storageLocalDir: string;
  apiPublicUrl: string;
  /** WORKER_QUEUES, parsed: the domains a worker process serves. */
  workerQueues: TaskQueueDomain[];
  /** The TEMPORAL_TLS_* settings with their files read; null: plaintext. */
  temporalTls: TLSConfig | null;
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * A service or resource the configuration names cannot be used at start (a database refusing
 * connections, a Temporal address nothing answers on, a port that cannot be bound). Printed as
 * a ConfigError is, one line naming the setting, without a stack: the fix is the setting or
 * the service, not the code.
 */
export class StartupError extends ConfigError {
  override name = 'StartupError';

  constructor(setting: string, problem: string, cause: unknown) {
    super(`${setting}: ${problem}: ${errorChain(cause)}`, { cause });
  }
}

/** An error's message and its causes' (an AggregateError's errors'), joined into one line. */
export function errorChain(error: unknown): string {
  const messages: string[] = [];
  for (let next: unknown = error; next !== undefined && messages.length < 5;) {
    if (next instanceof AggregateError && next.errors.length > 0) {
      messages.push(
        [...new Set(next.errors.map((inner) => errorChain(inner)))].join('; ') || next.message,
      );
      break;
    }
    const message = next instanceof Error ? next.message : JSON.stringify(next);
    if (message && !messages.includes(message)) messages.push(message);
    next = next instanceof Error ? next.cause : undefined;
  }
  return messages.join(': ');
}

/** A host as a URL writes it: an IPv6 address in brackets. */
export function urlHost(host: string): string {
  return isIPv6(host) ? `[${host}]` : host;
}

/** `url` with its user name and password replaced by `***`: fit for a log or an error. */
export function withoutCredentials(url: string): string {
  const parsed = new URL(url);
  if (parsed.username) parsed.username = '***';
  if (parsed.password) parsed.password = '***';
  return parsed.href;
}

/** Variables whose whole value is a credential: a refusal names them, never what they hold. */
const secretVariables = new Set([
  'AUTH_JWT_SECRET',
  'TEMPORAL_API_KEY',
  'S3_SECRET_ACCESS_KEY',
  'GEMINI_API_KEY',
  'VERTEX_ACCESS_TOKEN',
  'OPENAI_API_KEY',
  'OTEL_EXPORTER_OTLP_HEADERS',
]);

/**
 * A refused value as its error quotes it. Configuration errors end up in CI and service logs:
 * a secret is never quoted, and a URL (which may carry a password) is quoted without its
 * credentials, or not at all when it does not parse as one.
 */
function quotedValue(variable: string, value: string): string {
  if (secretVariables.has(variable)) return ' (value not shown: a secret)';
  if (!/_(URI|URL|ENDPOINT)$/.test(variable)) return ` (got ${JSON.stringify(value)})`;
  if (!URL.canParse(value.trim())) return ' (value not shown: it may hold credentials)';
  return ` (got ${JSON.stringify(withoutCredentials(value.trim()))})`;
}

/** Parses the environment once; throws a ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const variable = issue.path.join('.');
      const got = env[variable];
      return `${variable}: ${issue.message}${got === undefined ? '' : quotedValue(variable, got)}`;
    });
    throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const config = parsed.data;
  if (config.NODE_ENV === 'production' && !config.AUTH_JWT_SECRET && !config.AUTH_JWKS_URL) {
    throw new ConfigError(
      'Invalid configuration:\n  AUTH_JWT_SECRET: required when NODE_ENV=production (or set AUTH_JWKS_URL)',
    );
  }
  if (config.API_MAX_URL_BYTES >= config.API_MAX_HEADER_BYTES) {
    throw new ConfigError(
      `Invalid configuration:\n  API_MAX_URL_BYTES: must be below API_MAX_HEADER_BYTES (${config.API_MAX_HEADER_BYTES}), or a URL over it would be refused as headers too large`,
    );
  }
  if (config.API_HEADERS_TIMEOUT_MS > config.API_REQUEST_TIMEOUT_MS) {
    throw new ConfigError(
      `Invalid configuration:\n  API_HEADERS_TIMEOUT_MS: must not exceed API_REQUEST_TIMEOUT_MS (${config.API_REQUEST_TIMEOUT_MS})`,
    );
  }
  if (config.UPLOAD_ORPHAN_AGE_MS < config.API_REQUEST_TIMEOUT_MS + uploadStartMarginMs) {
    throw new ConfigError(
      `Invalid configuration:\n  UPLOAD_ORPHAN_AGE_MS: must be at least API_REQUEST_TIMEOUT_MS + 10 min (${config.API_REQUEST_TIMEOUT_MS + uploadStartMarginMs}), or the media sweep could delete an upload still arriving or starting its job`,
    );
  }
  if (config.WORKER_MAX_CACHED_WORKFLOWS < config.QUEUE_WORKFLOWS_SLOTS) {
    throw new ConfigError(
      `Invalid configuration:\n  WORKER_MAX_CACHED_WORKFLOWS: must be at least QUEUE_WORKFLOWS_SLOTS (${config.QUEUE_WORKFLOWS_SLOTS}), the workflow tasks a worker takes at once`,
    );
  }
  if (config.EVENT_STREAM_KEEPALIVE_MS >= config.API_IDLE_TIMEOUT_MS) {
    throw new ConfigError(
      `Invalid configuration:\n  EVENT_STREAM_KEEPALIVE_MS: must be below API_IDLE_TIMEOUT_MS (${config.API_IDLE_TIMEOUT_MS}), or a progress stream with nothing new to send is closed as an idle connection before its keep-alive`,
    );
  }
  if (config.PROVIDER_RETRY_INITIAL_MS > config.PROVIDER_RETRY_MAX_MS) {
    throw new ConfigError(
      `Invalid configuration:\n  PROVIDER_RETRY_INITIAL_MS: must not exceed PROVIDER_RETRY_MAX_MS (${config.PROVIDER_RETRY_MAX_MS}), or every provider call's retry policy is refused and its job fails`,
    );
  }
  if (config.AUTH_JWKS_URL) {
    const missing = (['AUTH_ISSUER', 'AUTH_AUDIENCE'] as const).filter((name) => !config[name]);
    if (missing.length > 0) {
      throw new ConfigError(
        `Invalid configuration:\n  ${missing.map((name) => `${name}: required when AUTH_JWKS_URL is set`).join('\n  ')}`,
      );
    }
  }
  const s3Settings = [
    'S3_ENDPOINT',
    'S3_BUCKET',
    'S3_ACCESS_KEY_ID',
    'S3_SECRET_ACCESS_KEY',
  ] as const;
  if (config.STORAGE_BACKEND === 's3') {
    const missing = s3Settings.filter((name) => !config[name]);
    if (missing.length > 0) {
      throw new ConfigError(
        `Invalid configuration:\n  ${missing.map((name) => `${name}: required when STORAGE_BACKEND=s3`).join('\n  ')}`,
      );
    }
  } else {
    // A bucket set up and the backend left at its default would keep every upload and video on
    // this machine's disk, out of reach of the other machines' workers, without a word.
    const set = s3Settings.filter((name) => config[name]);
    if (set.length > 0) {
      throw new ConfigError(
        `Invalid configuration:\n  ${set.map((name) => `${name}: set, but STORAGE_BACKEND is local, which ignores it; set STORAGE_BACKEND=s3 or unset ${name}`).join('\n  ')}`,
      );
    }
  }
  const aiProviderProblem = aiProviderSettingsProblem(config);
  if (aiProviderProblem) throw new ConfigError(`Invalid configuration:\n  ${aiProviderProblem}`);
  const temporalDevPorts = resolveTemporalDevPorts(config);
  let workerQueues: TaskQueueDomain[] = [...taskQueueDomains];
  if (config.WORKER_QUEUES !== undefined) {
    try {
      workerQueues = parseTaskQueueDomains(config.WORKER_QUEUES, 'WORKER_QUEUES');
    } catch (error) {
      throw new ConfigError(`Invalid configuration:\n  ${(error as Error).message}`);
    }
  }
  if (config.DATABASE_URL) checkDatabaseTlsFiles(config.DATABASE_URL);
  const dataDir = path.resolve(config.DATA_DIR);
  return {
    ...config,
    dataDir,
    temporalDevPorts,
    workerQueues,
    temporalTls: resolveTemporalTls(config),
    renderWorkDir: path.join(dataDir, 'render-work'),
    storageLocalDir: path.resolve(config.STORAGE_LOCAL_DIR ?? path.join(dataDir, 'storage')),
    apiPublicUrl: (
      config.API_PUBLIC_URL ?? `http://${urlHost(config.API_HOST)}:${config.API_PORT}`
    ).replace(/\/$/, ''),
  };
}

export type AiProviderKind = Exclude<Config['AI_PROVIDER'], 'auto'>;

/** Requests the embedded model's server works on at once; more wait in its queue. */
export const embeddedModelSlots = 2;

/** AI_PROVIDER with `auto` resolved: a named endpoint, else Google's, else the embedded model. */
export function selectAiProvider(
  config: Pick<Config, 'AI_PROVIDER' | 'OPENAI_BASE_URL' | 'GEMINI_API_KEY' | 'VERTEX_PROJECT'>,
): AiProviderKind {
  if (config.AI_PROVIDER !== 'auto') return config.AI_PROVIDER;
  if (config.OPENAI_BASE_URL) return 'openai';
  return config.GEMINI_API_KEY || config.VERTEX_PROJECT ? 'gemini' : 'embedded';
}

/** What an explicitly or automatically chosen AI provider lacks, as a configuration error. */
function aiProviderSettingsProblem(config: z.infer<typeof configSchema>): string | null {
  const provider = selectAiProvider(config);
  if (provider === 'openai' && !config.OPENAI_MODEL)
    return 'OPENAI_MODEL: required with the openai AI provider (AI_PROVIDER or OPENAI_BASE_URL)';
  if (provider === 'gemini' && !config.GEMINI_API_KEY && !config.VERTEX_PROJECT)
    return 'AI_PROVIDER: gemini needs GEMINI_API_KEY or VERTEX_PROJECT';
  return null;
}

function resolveTemporalDevPorts(config: z.infer<typeof configSchema>): TemporalDevPorts {
  const kinds = Object.keys(temporalDevPortVariables) as (keyof TemporalDevPorts)[];
  const ports = Object.fromEntries(
    kinds.map((kind) => [
      kind,
      config[temporalDevPortVariables[kind]] ??
        config.TEMPORAL_DEV_PORT + temporalDevPortOffsets[kind],
    ]),
  ) as unknown as TemporalDevPorts;
  const problems = kinds.flatMap((kind) => {
    const variable = temporalDevPortVariables[kind];
    if (ports[kind] > 65_535)
      return [
        `${variable}: TEMPORAL_DEV_PORT + ${temporalDevPortOffsets[kind]} is above 65535; set ${variable} or a lower TEMPORAL_DEV_PORT`,
      ];
    const earlier = kinds
      .slice(0, kinds.indexOf(kind))
      .find((other) => ports[other] === ports[kind]);
    return earlier
      ? [
          `${variable}: ${ports[kind]} is also ${temporalDevPortVariables[earlier]}; each dev server port must differ`,
        ]
      : [];
  });
  // Without TEMPORAL_ADDRESS, `npm start` runs the dev server on these ports, then the API.
  const devPortOfApi = config.TEMPORAL_ADDRESS
    ? undefined
    : kinds.find((kind) => ports[kind] === config.API_PORT);
  if (devPortOfApi)
    problems.push(
      `API_PORT: ${config.API_PORT} is also ${temporalDevPortVariables[devPortOfApi]}; the API and the dev server need ports of their own`,
    );
  if (problems.length > 0)
    throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  return ports;
}

/** A PEM file named by `variable`, read now so that a wrong path stops the process at start. */
function readPemFile(variable: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new ConfigError(
      `Invalid configuration:\n  ${variable}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
}

/**
 * pg reads the files DATABASE_URL's TLS parameters name each time it opens a connection; read
 * once here, a wrong path stops the process at start instead of failing every query.
 */
function checkDatabaseTlsFiles(databaseUrl: string): void {
  const { searchParams } = new URL(databaseUrl);
  for (const parameter of ['sslrootcert', 'sslcert', 'sslkey']) {
    const file = searchParams.get(parameter);
    if (file) readPemFile(`DATABASE_URL (${parameter})`, file);
  }
}

/** The TEMPORAL_TLS_* settings as the SDK's TLS options, with their files read; null: plaintext. */
function resolveTemporalTls(config: z.infer<typeof configSchema>): TLSConfig | null {
  const implied =
    config.TEMPORAL_TLS_CA_FILE ??
    config.TEMPORAL_TLS_CERT_FILE ??
    config.TEMPORAL_TLS_KEY_FILE ??
    config.TEMPORAL_TLS_SERVER_NAME ??
    config.TEMPORAL_API_KEY;
  const problems: string[] = [];
  if (config.TEMPORAL_TLS === false && implied !== undefined)
    problems.push(
      'TEMPORAL_TLS: false, but TEMPORAL_TLS_* or TEMPORAL_API_KEY is set (they need TLS)',
    );
  if (config.TEMPORAL_TLS_CERT_FILE && !config.TEMPORAL_TLS_KEY_FILE)
    problems.push('TEMPORAL_TLS_KEY_FILE: required with TEMPORAL_TLS_CERT_FILE (mutual TLS)');
  if (config.TEMPORAL_TLS_KEY_FILE && !config.TEMPORAL_TLS_CERT_FILE)
    problems.push('TEMPORAL_TLS_CERT_FILE: required with TEMPORAL_TLS_KEY_FILE (mutual TLS)');
  const enabled = config.TEMPORAL_TLS ?? implied !== undefined;
  if (enabled && !config.TEMPORAL_ADDRESS)
    problems.push(
      'TEMPORAL_ADDRESS: required with TLS to Temporal (the dev server `npm start` runs speaks plaintext)',
    );
  if (problems.length > 0)
    throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  if (!enabled) return null;
  const {
    TEMPORAL_TLS_CA_FILE: caFile,
    TEMPORAL_TLS_CERT_FILE: certFile,
    TEMPORAL_TLS_KEY_FILE: keyFile,
  } = config;
  return {
    ...(config.TEMPORAL_TLS_SERVER_NAME && { serverNameOverride: config.TEMPORAL_TLS_SERVER_NAME }),
    ...(caFile && { serverRootCACertificate: readPemFile('TEMPORAL_TLS_CA_FILE', caFile) }),
    ...(certFile &&
      keyFile && {
        clientCertPair: {
          crt: readPemFile('TEMPORAL_TLS_CERT_FILE', certFile),
          key: readPemFile('TEMPORAL_TLS_KEY_FILE', keyFile),
        },
      }),
  };
}

/** Where and how spans are exported; null when tracing is off (no OTLP endpoint set). */
export interface TracingSettings {
  /** The OTLP/HTTP traces endpoint, e.g. `http://collector:4318/v1/traces`. */
  tracesUrl: string;
  headers: Record<string, string>;
  serviceName: string;
}

/**
 * Where spans go, resolved as OpenTelemetry's exporters resolve it: the traces endpoint as given,
 * else `/v1/traces` under the base endpoint; undefined (tracing off) when neither is set.
 */
export function tracesEndpoint(
  config: Partial<
    Pick<Config, 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'>
  >,
): string | undefined {
  const base = config.OTEL_EXPORTER_OTLP_ENDPOINT;
  return (
    config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
    (base === undefined ? undefined : `${base.replace(/\/$/, '')}/v1/traces`)
  );
}

/** The tracing settings from the OTEL_* variables; null when tracing is off. */
export function tracingSettings(
  config: Pick<
    Config,
    | 'OTEL_EXPORTER_OTLP_ENDPOINT'
    | 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'
    | 'OTEL_EXPORTER_OTLP_HEADERS'
    | 'OTEL_SERVICE_NAME'
  >,
): TracingSettings | null {
  const tracesUrl = tracesEndpoint(config);
  if (tracesUrl === undefined) return null;
  const headers = Object.fromEntries(
    (config.OTEL_EXPORTER_OTLP_HEADERS ?? '')
      .split(',')
      .filter((pair) => pair.trim() !== '')
      .map((pair) => {
        const at = pair.indexOf('=');
        return [pair.slice(0, at).trim(), decodeURIComponent(pair.slice(at + 1).trim())];
      }),
  );
  return { tracesUrl, headers, serviceName: config.OTEL_SERVICE_NAME };
}

/** The provider backoff jobs carry in their workflow input, from the PROVIDER_RETRY_* variables. */
export function providerRetrySettings(config: Config): ProviderRetrySettings {
  return {
    initialIntervalMs: config.PROVIDER_RETRY_INITIAL_MS,
    maximumIntervalMs: config.PROVIDER_RETRY_MAX_MS,
    maximumAttempts: config.PROVIDER_RETRY_ATTEMPTS,
  };
}

/** How many media processes run at once, and at which priority, from the MEDIA_* variables. */
export function mediaProcessLimits(config: Config): MediaProcessLimits {
  return { maxConcurrent: config.MEDIA_MAX_CONCURRENT_FFMPEG, nice: config.MEDIA_FFMPEG_NICE };
}

/** What one worker gives a domain's queue; from the QUEUE_* variables. */
export interface QueueCapacity {
  /** Tasks one worker runs at once: workflow tasks on `workflows`, activities elsewhere. */
  slots: number;
  /** Long polls one worker keeps open (at most the slots). */
  pollers: number;
  /** Activity starts per second on the whole queue, enforced by the server; unset: unlimited. */
  ratePerSecond?: number | undefined;
}

/** Each domain's capacity from the QUEUE_* variables (media's slots: MEDIA_MAX_CONCURRENT_FFMPEG). */
export function queueCapacities(config: Config): Record<TaskQueueDomain, QueueCapacity> {
  const activityQueue = (
    slots: number,
    pollers: number,
    ratePerSecond: number | undefined,
  ): QueueCapacity => ({ slots, pollers: Math.min(pollers, slots), ratePerSecond });
  const activities: Record<ActivityDomain, QueueCapacity> = {
    analysis: activityQueue(
      config.QUEUE_ANALYSIS_SLOTS,
      config.QUEUE_ANALYSIS_POLLERS,
      config.QUEUE_ANALYSIS_RATE_PER_SECOND,
    ),
    'video-generation': activityQueue(
      config.QUEUE_VIDEO_GENERATION_SLOTS,
      config.QUEUE_VIDEO_GENERATION_POLLERS,
      config.QUEUE_VIDEO_GENERATION_RATE_PER_SECOND,
    ),
    'text-generation': activityQueue(
      config.QUEUE_TEXT_GENERATION_SLOTS ??
        (selectAiProvider(config) === 'embedded' ? embeddedModelSlots : 50),
      config.QUEUE_TEXT_GENERATION_POLLERS,
      config.QUEUE_TEXT_GENERATION_RATE_PER_SECOND,
    ),
    media: activityQueue(
      config.MEDIA_MAX_CONCURRENT_FFMPEG,
      config.QUEUE_MEDIA_POLLERS,
      config.QUEUE_MEDIA_RATE_PER_SECOND,
    ),
    transfer: activityQueue(
      config.QUEUE_TRANSFER_SLOTS,
      config.QUEUE_TRANSFER_POLLERS,
      config.QUEUE_TRANSFER_RATE_PER_SECOND,
    ),
    storage: activityQueue(
      config.QUEUE_STORAGE_SLOTS,
      config.QUEUE_STORAGE_POLLERS,
      config.QUEUE_STORAGE_RATE_PER_SECOND,
    ),
    inspection: activityQueue(
      config.QUEUE_INSPECTION_SLOTS,
      config.QUEUE_INSPECTION_POLLERS,
      config.QUEUE_INSPECTION_RATE_PER_SECOND,
    ),
  };
  return {
    workflows: {
      slots: config.QUEUE_WORKFLOWS_SLOTS,
      pollers: Math.min(config.QUEUE_WORKFLOWS_POLLERS, config.QUEUE_WORKFLOWS_SLOTS),
    },
    ...activities,
  };
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
