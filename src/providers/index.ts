import { GoogleGenAI, type GoogleGenAIOptions } from '@google/genai';
import { OAuth2Client } from 'google-auth-library';
import type { Config } from '../config.js';
import { GcsObjectStorage, parseGcsUri } from '../storage/gcs-storage.js';
import { GeminiMediaAnalyzer } from './gemini-analyzer.js';
import { GeminiTextGenerator } from './gemini-text-generator.js';
import type { MediaAnalyzer, TextGenerator, VideoGenerator } from './types.js';
import { VeoVideoGenerator } from './veo-generator.js';

export interface Providers {
  analyzer: MediaAnalyzer | null;
  /** The LLM behind AI generation jobs. */
  textGenerator: TextGenerator | null;
  videoGenerator: VideoGenerator | null;
  /** Where generated videos are written (Veo's output bucket). */
  generationStorage: GcsObjectStorage | null;
  /** gs://bucket/prefix/ generated videos go under. */
  generationOutputUri: string | null;
  /** Variables that would have to be set for vlogs to run; empty when they can. */
  missing: string[];
}

type ProviderConfig = Pick<
  Config,
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
>;

/** Which variables the vlog pipeline lacks; the API refuses vlogs (503) while any are missing. */
export function missingVlogProviderSettings(config: ProviderConfig): string[] {
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
    httpOptions: {
      timeout: config.PROVIDER_REQUEST_TIMEOUT_MS,
      ...(config.VERTEX_BASE_URL ? { baseUrl: config.VERTEX_BASE_URL } : {}),
    },
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

/** Which variables AI generation jobs lack; the API refuses them (503) while any are missing. */
export function missingAiProviderSettings(config: ProviderConfig): string[] {
  return config.GEMINI_API_KEY || config.VERTEX_PROJECT ? [] : ['GEMINI_API_KEY or VERTEX_PROJECT'];
}

/** Builds the Google providers the configuration allows; the worker hands them to the activities. */
export function createProviders(config: ProviderConfig): Providers {
  const missing = missingVlogProviderSettings(config);
  const vertex = config.VERTEX_PROJECT
    ? vertexClient({ ...config, VERTEX_PROJECT: config.VERTEX_PROJECT })
    : null;
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

  const gemini = config.GEMINI_API_KEY
    ? new GoogleGenAI({
        apiKey: config.GEMINI_API_KEY,
        httpOptions: {
          timeout: config.PROVIDER_REQUEST_TIMEOUT_MS,
          ...(config.GEMINI_BASE_URL ? { baseUrl: config.GEMINI_BASE_URL } : {}),
        },
      })
    : null;
  let analyzer: MediaAnalyzer | null = null;
  if (gemini) {
    analyzer = new GeminiMediaAnalyzer(gemini, config.GEMINI_MODEL, { kind: 'files-api' });
  } else if (vertex && generationStorage && output) {
    analyzer = new GeminiMediaAnalyzer(vertex, config.GEMINI_MODEL, {
      kind: 'gcs',
      storage: generationStorage,
      bucket: output.bucket,
      prefix: outputPrefix,
    });
  }
  const textClient = gemini ?? vertex;
  return {
    analyzer,
    textGenerator: textClient ? new GeminiTextGenerator(textClient, config.GEMINI_MODEL) : null,
    videoGenerator: vertex ? new VeoVideoGenerator(vertex, config.VEO_MODEL) : null,
    generationStorage,
    generationOutputUri: output ? `gs://${output.bucket}/${outputPrefix}` : null,
    missing,
  };
}
