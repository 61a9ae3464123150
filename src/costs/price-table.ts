/**
 * The prices the service charges provider calls at, versioned: a ledger entry names the version
 * (and the operator's override, if any) its cost was computed with, so a price change never
 * rewrites what earlier entries cost. Prices change: a new price is a new entry with a later
 * `effectiveFrom` and `priceTableVersion` moves on; operators override a price without a
 * release through COST_PRICES (docs/configuration.md).
 */

/** The currency every price and amount is in. */
export const costCurrency = 'USD';

/** Changes whenever an entry below is added or changed. */
export const priceTableVersion = '2026-11-30';

/** What a provider bills by: tokens sent, tokens written (thinking included), seconds of video generated. */
export type PriceUnit = 'inputTokens' | 'outputTokens' | 'videoSeconds';

/** How many units a price is given for: tokens per million, video per second. */
export const priceUnitSize: Record<PriceUnit, bigint> = {
  inputTokens: 1_000_000n,
  outputTokens: 1_000_000n,
  videoSeconds: 1n,
};

export interface PriceEntry {
  /** The provider label of the calls it prices (`gemini`, `veo`, `openai`, `local`, `embedded`). */
  provider: string;
  /** The model it prices; `*` prices every model of the provider not listed by name. */
  model: string;
  /** Decimal price per `priceUnitSize[unit]` units, in `costCurrency`. */
  prices: Partial<Record<PriceUnit, string>>;
  /** The day the provider's price took effect (or was read, where it gives no date). */
  effectiveFrom: string;
  /** Where the price was read. */
  source: string;
}

const geminiPricing = 'https://ai.google.dev/gemini-api/docs/pricing';
const vertexPricing = 'https://cloud.google.com/vertex-ai/generative-ai/pricing';

export const priceTable: readonly PriceEntry[] = [
  {
    provider: 'gemini',
    model: 'gemini-2.5-flash',
    prices: { inputTokens: '0.30', outputTokens: '2.50' },
    effectiveFrom: '2025-06-17',
    source: geminiPricing,
  },
  {
    provider: 'gemini',
    model: 'gemini-2.5-flash-lite',
    prices: { inputTokens: '0.10', outputTokens: '0.40' },
    effectiveFrom: '2025-07-22',
    source: geminiPricing,
  },
  {
    provider: 'gemini',
    model: 'gemini-2.5-pro',
    prices: { inputTokens: '1.25', outputTokens: '10.00' },
    effectiveFrom: '2025-06-17',
    source: `${geminiPricing} (prompts up to 200k tokens)`,
  },
  {
    // An unlisted Gemini model is charged as the dearest listed one rather than as free.
    provider: 'gemini',
    model: '*',
    prices: { inputTokens: '1.25', outputTokens: '10.00' },
    effectiveFrom: '2025-06-17',
    source: `${geminiPricing} (gemini-2.5-pro, the dearest listed)`,
  },
  {
    provider: 'veo',
    model: 'veo-3.1-generate-001',
    prices: { videoSeconds: '0.40' },
    effectiveFrom: '2025-10-15',
    source: `${vertexPricing} (video with audio)`,
  },
  {
    provider: 'veo',
    model: 'veo-3.1-fast-generate-001',
    prices: { videoSeconds: '0.15' },
    effectiveFrom: '2025-10-15',
    source: `${vertexPricing} (video with audio)`,
  },
  {
    provider: 'veo',
    model: '*',
    prices: { videoSeconds: '0.40' },
    effectiveFrom: '2025-10-15',
    source: `${vertexPricing} (veo-3.1-generate-001, the dearest listed)`,
  },
  {
    // Any OpenAI-compatible server: most are local (Ollama, vLLM), which cost nothing per call;
    // an operator of a paid endpoint sets its prices in COST_PRICES.
    provider: 'openai',
    model: '*',
    prices: { inputTokens: '0', outputTokens: '0' },
    effectiveFrom: '2026-11-30',
    source: 'self-hosted servers bill nothing per call; set COST_PRICES for a paid endpoint',
  },
  {
    provider: 'embedded',
    model: '*',
    prices: { inputTokens: '0', outputTokens: '0' },
    effectiveFrom: '2026-11-30',
    source: 'runs on the worker',
  },
  {
    provider: 'local',
    model: '*',
    prices: { inputTokens: '0', outputTokens: '0', videoSeconds: '0' },
    effectiveFrom: '2026-11-30',
    source: 'ffmpeg on the worker',
  },
];
