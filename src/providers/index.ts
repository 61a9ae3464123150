import { GoogleGenAI, type GoogleGenAIOptions } from '@google/genai';
import { OAuth2Client } from 'google-auth-library';
import path from 'node:path';
import OpenAI from 'openai';
import { selectAiProvider, type Config } from '../config.js';
import { localRenderPrefix } from '../jobs/storage-keys.js';
import type { MediaTools } from '../media/tools.js';
import { GcsObjectStorage, parseGcsUri } from '../storage/gcs-storage.js';
import { mediaUri, type MediaStorage, type ObjectStorage } from '../storage/object-storage.js';
import { GeminiMediaAnalyzer } from './gemini-analyzer.js';
import { GeminiTextGenerator } from './gemini-text-generator.js';
import { LocalMediaAnalyzer } from './local-analyzer.js';
import { LocalVideoGenerator } from './local-generator.js';
import { EmbeddedModel } from './embedded-model.js';
import { OpenAiCompatibleTextGenerator } from './openai-text-generator.js';
import type { MediaAnalyzer, TextGenerator, VideoGenerator } from './types.js';
import { VeoVideoGenerator } from './veo-generator.js';
import type { CostedModel } from '../costs/estimates.js';
import { PriceBook } from '../costs/prices.js';

export type VlogProviderKind = 'local' | 'google';

export interface Providers {
  /** Which provider the configuration selected. */
  kind: VlogProviderKind;
  analyzer: MediaAnalyzer | null;
  /** The LLM behind AI generation jobs. */
  textGenerator: TextGenerator | null;
  /** The embedded model's server, when AI jobs use it: started on first use, or at start by `startEmbeddedModel`. */
  embeddedModel: EmbeddedModel | null;
  videoGenerator: VideoGenerator | null;
  /** Where generated videos are written: Veo's output bucket, or media storage for local renders. */
  generationStorage: ObjectStorage | null;
  /** gs://bucket/prefix/ (Veo) or media:renders/ (local) generated videos go under. */
  generationOutputUri: string | null;
  /**
   * How long a remote generator's submission that got no answer is looked for in
   * `generationStorage` before it is sent again (VEO_UNANSWERED_SUBMISSION_WAIT_MS).
   */
  unansweredSubmissionWaitMs: number;
  /** What would have to be set or installed for vlogs to run; empty when they can. */
  missing: string[];
  quotas: ProviderQuotas;
  /** What each call is charged at: the price table with the operator's COST_PRICES. */
  prices: PriceBook;
}

/**
 * How the provider-quota governor meters the providers (`src/activities/provider-quota.ts`):
 * the names under which their leases and cool-downs are shared by every worker.
 */
export interface ProviderQuotas {
  /**
   * The video generator's operations at once, and its requests (submissions and checks) a
   * second across every worker, one interval apart (null: not paced); null: unmetered (a local
   * render is bounded by the media queue).
   */
  videoOperations: {
    provider: string;
    maxConcurrent: number;
    requestsPerSecond: number | null;
  } | null;
  /** Under which name the text generator's 429s cool every worker down. */
  textProvider: string;
  /** Under which name the media analyzer's 429s cool every worker down; null: a local analyzer. */
  analysisProvider: string | null;
  /** Pause before a job waiting for a lease asks again. */
  recheckMs: number;
  /** Cool-down after a 429 that names no retry delay. */
  rateLimitCooldownMs: number;
}

type ProviderConfig = Pick<
  Config,
  | 'VLOG_PROVIDER'
  | 'LOCAL_VIDEO_HEIGHT'
  | 'VLOG_MAX_IMAGE_PIXELS'
  | 'renderWorkDir'
  | 'GEMINI_API_KEY'
  | 'GEMINI_BASE_URL'
  | 'GEMINI_MODEL'
  | 'VERTEX_PROJECT'
  | 'VERTEX_LOCATION'
  | 'VERTEX_BASE_URL'
  | 'VERTEX_ACCESS_TOKEN'
  | 'VEO_MODEL'
  | 'VEO_OUTPUT_GCS_URI'
  | 'GCS_API_ENDPOINT'
  | 'PROVIDER_REQUEST_TIMEOUT_MS'
  | 'VEO_MAX_CONCURRENT_OPERATIONS'
  | 'VEO_UNANSWERED_SUBMISSION_WAIT_MS'
  | 'QUEUE_VIDEO_GENERATION_RATE_PER_SECOND'
  | 'PROVIDER_QUOTA_RECHECK_MS'
  | 'PROVIDER_RATE_LIMIT_COOLDOWN_MS'
  | 'AI_PROVIDER'
  | 'OPENAI_BASE_URL'
  | 'OPENAI_API_KEY'
  | 'OPENAI_MODEL'
  | 'OPENAI_REQUEST_TIMEOUT_MS'
  | 'EMBEDDED_MODEL_FILE'
  | 'EMBEDDED_MODEL_THREADS'
  | 'dataDir'
  | 'COST_PRICES'
>;

function providerQuotas(config: ProviderConfig, provider: VlogProviderKind): ProviderQuotas {
  return {
    videoOperations:
      provider === 'google'
        ? {
            provider: 'veo',
            maxConcurrent: config.VEO_MAX_CONCURRENT_OPERATIONS,
            // The video-generation queue's rate: the server holds the backlog to it, and each
            // request waits its slot so that a burst the server lets through is spaced out.
            requestsPerSecond: config.QUEUE_VIDEO_GENERATION_RATE_PER_SECOND ?? null,
          }
        : null,
    textProvider: selectAiProvider(config),
    analysisProvider: provider === 'google' ? 'gemini' : null,
    recheckMs: config.PROVIDER_QUOTA_RECHECK_MS,
    rateLimitCooldownMs: config.PROVIDER_RATE_LIMIT_COOLDOWN_MS,
  };
}

/** VLOG_PROVIDER, with `auto` resolved: any Google setting picks Google, none picks local. */
export function selectVlogProvider(
  config: Pick<
    Config,
    'VLOG_PROVIDER' | 'GEMINI_API_KEY' | 'VERTEX_PROJECT' | 'VEO_OUTPUT_GCS_URI'
  >,
): VlogProviderKind {
  if (config.VLOG_PROVIDER !== 'auto') return config.VLOG_PROVIDER;
  return config.GEMINI_API_KEY || config.VERTEX_PROJECT || config.VEO_OUTPUT_GCS_URI
    ? 'google'
    : 'local';
}

/**
 * What the selected provider lacks: variables for Google, ffmpeg for local. The API refuses
 * vlogs (503) while anything is missing.
 */
export function missingVlogProviderSettings(
  config: Pick<
    Config,
    'VLOG_PROVIDER' | 'GEMINI_API_KEY' | 'VERTEX_PROJECT' | 'VEO_OUTPUT_GCS_URI'
  >,
  hasMediaTools: boolean,
): string[] {
  if (selectVlogProvider(config) === 'local') return hasMediaTools ? [] : ['ffmpeg', 'ffprobe'];
  const missing: string[] = [];
  if (!config.VERTEX_PROJECT) missing.push('VERTEX_PROJECT');
  if (!config.VEO_OUTPUT_GCS_URI) missing.push('VEO_OUTPUT_GCS_URI');
  return missing;
}

function vertexClient(config: ProviderConfig & { VERTEX_PROJECT: string }): GoogleGenAI {
  const options: GoogleGenAIOptions = {
    vertexai: true,
    project: config.VERTEX_PROJECT,
    location: config.VERTEX_LOCATION,
    ...(config.VERTEX_BASE_URL && { httpOptions: { baseUrl: config.VERTEX_BASE_URL } }),
  };
  if (config.VERTEX_ACCESS_TOKEN) {
    const authClient = new OAuth2Client();
    // A fixed token (a proxy's, or a test's) is used as is until the process restarts.
    authClient.setCredentials({
      access_token: config.VERTEX_ACCESS_TOKEN,
      expiry_date: Date.now() + 365 * 86_400_000,
    });
    options.googleAuthOptions = { authClient };
  }
  return new GoogleGenAI(options);
}

/**
 * The provider and model each kind's calls go to, as the ledger records them: what the API
 * estimates a job's cost with. Null where the configuration selects none.
 */
export function costedModels(
  config: Pick<
    Config,
    | 'AI_PROVIDER'
    | 'OPENAI_BASE_URL'
    | 'OPENAI_MODEL'
    | 'GEMINI_API_KEY'
    | 'GEMINI_MODEL'
    | 'VERTEX_PROJECT'
    | 'VLOG_PROVIDER'
    | 'VEO_OUTPUT_GCS_URI'
    | 'VEO_MODEL'
  >,
): { ai: CostedModel | null; vlogAnalysis: CostedModel | null; vlogVideo: CostedModel } {
  const aiProvider = selectAiProvider(config);
  const ai: Record<typeof aiProvider, CostedModel | null> = {
    gemini: { provider: 'gemini', model: config.GEMINI_MODEL },
    openai: { provider: 'openai', model: config.OPENAI_MODEL ?? '' },
    // Every embedded model is priced alike (nothing): the file it serves does not matter.
    embedded: { provider: 'embedded', model: '*' },
    none: null,
  };
  const google = selectVlogProvider(config) === 'google';
  return {
    ai: ai[aiProvider],
    vlogAnalysis: google ? { provider: 'gemini', model: config.GEMINI_MODEL } : null,
    vlogVideo: google
      ? { provider: 'veo', model: config.VEO_MODEL }
      : { provider: 'local', model: 'ffmpeg' },
  };
}

/** Why AI generation jobs are refused (503), or null when a model serves them. */
export function aiJobsUnavailable(config: Pick<Config, 'AI_PROVIDER'>): string | null {
  return config.AI_PROVIDER === 'none'
    ? 'AI jobs are turned off on this service (AI_PROVIDER=none)'
    : null;
}

/** An `openai` client for a server that wants no key or one, with retries left to Temporal. */
function openAiClient(baseURL: string, config: ProviderConfig): OpenAI {
  return new OpenAI({
    baseURL,
    // Servers of local models want no key; the client insists on one.
    apiKey: config.OPENAI_API_KEY ?? 'unused',
    timeout: config.OPENAI_REQUEST_TIMEOUT_MS,
    // Temporal retries the activity, with the provider-quota governor between attempts.
    maxRetries: 0,
  });
}

/**
 * The model behind AI generation jobs, as AI_PROVIDER selects it, and the embedded model's
 * server when that is the one; no generator with AI_PROVIDER=none.
 */
function createTextGenerator(
  config: ProviderConfig,
  googleClient: GoogleGenAI | null,
): { textGenerator: TextGenerator | null; embeddedModel: EmbeddedModel | null } {
  const provider = selectAiProvider(config);
  if (provider === 'openai') {
    const client = openAiClient(config.OPENAI_BASE_URL ?? 'https://api.openai.com/v1', config);
    return {
      textGenerator: new OpenAiCompatibleTextGenerator(
        () => Promise.resolve(client),
        config.OPENAI_MODEL!,
        config.OPENAI_REQUEST_TIMEOUT_MS,
        'openai',
      ),
      embeddedModel: null,
    };
  }
  if (provider === 'embedded') {
    const embeddedModel = new EmbeddedModel({
      modelFile: config.EMBEDDED_MODEL_FILE && path.resolve(config.EMBEDDED_MODEL_FILE),
      threads: config.EMBEDDED_MODEL_THREADS,
      logFile: path.join(config.dataDir, 'embedded-model.log'),
    });
    let client: { baseUrl: string; client: OpenAI } | null = null;
    const connect = async () => {
      const baseUrl = await embeddedModel.baseUrl();
      if (client?.baseUrl !== baseUrl) client = { baseUrl, client: openAiClient(baseUrl, config) };
      return client.client;
    };
    return {
      textGenerator: new OpenAiCompatibleTextGenerator(
        connect,
        embeddedModel.model,
        config.OPENAI_REQUEST_TIMEOUT_MS,
        'embedded',
        embeddedModel.notice,
      ),
      embeddedModel,
    };
  }
  const textGenerator =
    provider === 'gemini' && googleClient
      ? new GeminiTextGenerator(
          googleClient,
          config.GEMINI_MODEL,
          config.PROVIDER_REQUEST_TIMEOUT_MS,
        )
      : null;
  return { textGenerator, embeddedModel: null };
}

/** The ffmpeg provider: analysis and rendering on the worker, renders kept in media storage. */
function localProviders(
  config: ProviderConfig,
  { mediaStorage, mediaTools }: ProviderDependencies,
  text: Pick<Providers, 'textGenerator' | 'embeddedModel'>,
): Providers {
  return {
    kind: 'local',
    analyzer: mediaTools
      ? new LocalMediaAnalyzer(mediaTools, { maxImagePixels: config.VLOG_MAX_IMAGE_PIXELS })
      : null,
    ...text,
    videoGenerator: mediaTools
      ? new LocalVideoGenerator({
          tools: mediaTools,
          storage: mediaStorage,
          workDir: config.renderWorkDir,
          height: config.LOCAL_VIDEO_HEIGHT,
          maxImagePixels: config.VLOG_MAX_IMAGE_PIXELS,
        })
      : null,
    generationStorage: mediaStorage,
    generationOutputUri: mediaUri(localRenderPrefix),
    unansweredSubmissionWaitMs: config.VEO_UNANSWERED_SUBMISSION_WAIT_MS,
    missing: missingVlogProviderSettings(config, mediaTools !== null),
    quotas: providerQuotas(config, 'local'),
    prices: new PriceBook(config.COST_PRICES),
  };
}

export interface ProviderDependencies {
  mediaStorage: MediaStorage;
  mediaTools: MediaTools | null;
}

/**
 * Builds the providers the configuration selects; the worker hands them to the activities.
 * AI generation jobs use the model AI_PROVIDER selects, whichever vlog provider is selected.
 */
export function createProviders(config: ProviderConfig, deps: ProviderDependencies): Providers {
  const vertex = config.VERTEX_PROJECT
    ? vertexClient({ ...config, VERTEX_PROJECT: config.VERTEX_PROJECT })
    : null;
  const gemini = config.GEMINI_API_KEY
    ? new GoogleGenAI({
        apiKey: config.GEMINI_API_KEY,
        ...(config.GEMINI_BASE_URL && { httpOptions: { baseUrl: config.GEMINI_BASE_URL } }),
      })
    : null;
  const text = createTextGenerator(config, gemini ?? vertex);
  if (selectVlogProvider(config) === 'local') return localProviders(config, deps, text);
  const missing = missingVlogProviderSettings(config, deps.mediaTools !== null);
  const output = config.VEO_OUTPUT_GCS_URI ? parseGcsUri(config.VEO_OUTPUT_GCS_URI) : null;
  const generationStorage = output
    ? new GcsObjectStorage(output.bucket, {
        apiEndpoint: config.GCS_API_ENDPOINT,
        projectId: config.VERTEX_PROJECT,
      })
    : null;
  const outputPrefix = output
    ? output.key === '' || output.key.endsWith('/')
      ? output.key
      : `${output.key}/`
    : '';

  const photos = deps.mediaTools && {
    tools: deps.mediaTools,
    maxImagePixels: config.VLOG_MAX_IMAGE_PIXELS,
  };
  let analyzer: MediaAnalyzer | null = null;
  if (gemini) {
    analyzer = new GeminiMediaAnalyzer(
      gemini,
      config.GEMINI_MODEL,
      config.PROVIDER_REQUEST_TIMEOUT_MS,
      {
        kind: 'files-api',
      },
      photos,
    );
  } else if (vertex && generationStorage && output) {
    analyzer = new GeminiMediaAnalyzer(
      vertex,
      config.GEMINI_MODEL,
      config.PROVIDER_REQUEST_TIMEOUT_MS,
      {
        kind: 'gcs',
        storage: generationStorage,
        bucket: output.bucket,
        prefix: outputPrefix,
      },
      photos,
    );
  }
  return {
    kind: 'google',
    analyzer,
    ...text,
    videoGenerator: vertex
      ? new VeoVideoGenerator(vertex, config.VEO_MODEL, config.PROVIDER_REQUEST_TIMEOUT_MS)
      : null,
    generationStorage,
    generationOutputUri: output ? `gs://${output.bucket}/${outputPrefix}` : null,
    unansweredSubmissionWaitMs: config.VEO_UNANSWERED_SUBMISSION_WAIT_MS,
    missing,
    quotas: providerQuotas(config, 'google'),
    prices: new PriceBook(config.COST_PRICES),
  };
}
