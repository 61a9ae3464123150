import { formatMoney, parseMoney, priceOf } from './money.js';
import {
  costCurrency,
  priceTable,
  priceTableVersion,
  priceUnitSize,
  type PriceUnit,
} from './price-table.js';

/** Prices an operator sets (COST_PRICES), keyed `provider:model` or `provider:*`. */
export type PriceOverrides = Record<string, Partial<Record<PriceUnit, string>>>;

/** What one provider call consumed. */
export interface ProviderUsage {
  /** The provider label (`gemini`, `veo`, `openai`, `embedded`, `local`). */
  provider: string;
  model: string;
  inputTokens?: number;
  outputTokens?: number;
  videoSeconds?: number;
}

/** The price a call is charged at, and where it came from. */
export interface AppliedPrice {
  /** Decimal price per `priceUnitSize[unit]`, for each unit. */
  prices: Record<PriceUnit, string>;
  /** The price table version, with `+config` when an operator's price replaced one of its entries. */
  version: string;
  effectiveFrom: string;
  source: string;
}

export interface Charge {
  price: AppliedPrice;
  /** In nano-units of `costCurrency`. */
  cost: bigint;
  currency: string;
}

const units = Object.keys(priceUnitSize) as PriceUnit[];

/**
 * The price table with the operator's overrides: what a call of a provider's model costs. An
 * override replaces the units it names, for the model it names (or every model of the
 * provider with `*`); the table answers the rest.
 */
export class PriceBook {
  constructor(private readonly overrides: PriceOverrides = {}) {
    for (const [key, prices] of Object.entries(overrides)) {
      if (!/^[a-z0-9-]+:[^:\s]+$/.test(key))
        throw new Error(`price key "${key}" must be provider:model (or provider:*)`);
      for (const price of Object.values(prices)) parseMoney(price);
    }
  }

  priceOf(provider: string, model: string): AppliedPrice {
    const entry =
      priceTable.find((row) => row.provider === provider && row.model === model) ??
      priceTable.find((row) => row.provider === provider && row.model === '*');
    const override = this.overrides[`${provider}:${model}`] ?? this.overrides[`${provider}:*`];
    const prices = Object.fromEntries(
      units.map((unit) => [unit, override?.[unit] ?? entry?.prices[unit] ?? '0']),
    ) as Record<PriceUnit, string>;
    if (override) {
      return {
        prices,
        version: `${priceTableVersion}+config`,
        effectiveFrom: entry?.effectiveFrom ?? priceTableVersion,
        source: entry ? `COST_PRICES over ${entry.source}` : 'COST_PRICES',
      };
    }
    if (!entry) {
      // A provider the table does not know: charged nothing rather than a made-up price.
      return {
        prices,
        version: priceTableVersion,
        effectiveFrom: priceTableVersion,
        source: 'unpriced provider',
      };
    }
    return {
      prices,
      version: priceTableVersion,
      effectiveFrom: entry.effectiveFrom,
      source: entry.source,
    };
  }

  charge(usage: ProviderUsage): Charge {
    const price = this.priceOf(usage.provider, usage.model);
    let cost = 0n;
    for (const unit of units) {
      const quantity = usage[unit] ?? 0;
      if (quantity > 0) {
        cost += priceOf(
          parseMoney(price.prices[unit]),
          BigInt(Math.ceil(quantity)),
          priceUnitSize[unit],
        );
      }
    }
    return { price, cost, currency: costCurrency };
  }
}

/** An amount as the API shows it. */
export interface MoneyView {
  currency: string;
  amount: string;
}

export function moneyView(nanos: bigint): MoneyView {
  return { currency: costCurrency, amount: formatMoney(nanos) };
}
