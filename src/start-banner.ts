// The text `npm start` prints once everything runs: where the API, the web page and the Temporal
// UI are, and how to get a token. Kept apart from the entry point so tests can read it.
import path from 'node:path';
import type { TextGenerator } from './providers/types.js';

export interface StartBannerFacts {
  /** The API's own address, `http://host:port`. */
  apiUrl: string;
  /**
   * A token minted for the local user, or null when tokens come from an identity provider
   * (AUTH_JWKS_URL set): then no token is printed, in the web page's link or anywhere else.
   */
  token: { value: string; hours: number } | null;
  /** The Temporal UI, when known. */
  temporalUiUrl: string | null | undefined;
  temporalNamespace: string;
  databaseUrl: string | undefined;
  dataDir: string;
  textGenerator: Pick<TextGenerator, 'provider' | 'model' | 'notice'> | null;
}

export function startBanner(facts: StartBannerFacts): string {
  const { apiUrl, token, textGenerator } = facts;
  return [
    '',
    `vlogflow is running`,
    `  API:          ${apiUrl}   (docs: ${apiUrl}/docs)`,
    // The token rides in the fragment, which a browser never sends: the page reads it.
    `  Web page:     ${token ? `${apiUrl}/#token=${token.value}` : `${apiUrl}/   (sign in with a token from your identity provider)`}`,
    `  Temporal UI:  ${facts.temporalUiUrl ? `${facts.temporalUiUrl}/namespaces/${facts.temporalNamespace}/workflows` : 'not known: set TEMPORAL_UI_URL'}`,
    `  Data:         ${facts.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : path.join(facts.dataDir, 'pglite')}`,
    `  AI jobs:      ${textGenerator ? `${textGenerator.provider} model ${textGenerator.model}` : 'off (AI_PROVIDER=none)'}`,
    ...(textGenerator?.notice
      ? [
          '                A tiny model embedded for trying AI jobs offline: its answers are poor. For a real',
          '                model set OPENAI_BASE_URL and OPENAI_MODEL (any OpenAI-compatible server) or',
          '                GEMINI_API_KEY; see README, "AI models".',
        ]
      : []),
    '',
    ...(token
      ? [
          `A token for user "local-dev" (${Number(token.hours.toFixed(2))} h); mint one for any user with \`npm run token -- <user id>\`:`,
          `  export TOKEN=${token.value}`,
        ]
      : ['Tokens come from your identity provider (AUTH_JWKS_URL):', '  export TOKEN=<its JWT>']),
    // With AI jobs off, the API answers this one 503: it is offered only when it can run.
    ...(textGenerator
      ? [
          `  curl -s -X POST ${apiUrl}/api/ai/jobs -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"type":"SUBGOAL_GENERATION","input":{"goal":"Run a marathon"}}'`,
        ]
      : []),
    `  curl -s -X POST ${apiUrl}/api/probes -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"steps":3}'`,
    '',
    'Ctrl-C stops everything.',
    '',
  ].join('\n');
}
