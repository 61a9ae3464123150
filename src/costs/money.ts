/**
 * Money as exact decimals: amounts are bigint counts of nano-units (10^-9 of the currency),
 * which PostgreSQL stores as numeric(20,9) and the API shows as decimal strings. Never floats:
 * per-token prices are fractions of a cent that a float would round differently every sum.
 */

/** Digits after the point every amount keeps: a price per token of $0.10 per million is 100 nano-dollars. */
export const moneyScale = 9;
const unit = 10n ** BigInt(moneyScale);

/** A decimal string the API and the configuration accept: digits, optionally a point and up to 9 more. */
export const decimalPattern = /^\d{1,11}(\.\d{1,9})?$/;

/** Nano-units of a non-negative decimal string ("0.40" → 400000000n); throws on anything else. */
export function parseMoney(text: string): bigint {
  const trimmed = text.trim();
  if (!decimalPattern.test(trimmed)) {
    throw new Error(`"${text}" is not a decimal amount with at most ${moneyScale} decimals`);
  }
  const [whole, fraction = ''] = trimmed.split('.');
  return BigInt(whole!) * unit + BigInt(fraction.padEnd(moneyScale, '0'));
}

/**
 * A decimal string of nano-units, with at least two decimals and no trailing zeros past them
 * ("1.20", "0.000045"). Negative amounts keep their sign.
 */
export function formatMoney(nanos: bigint): string {
  const sign = nanos < 0n ? '-' : '';
  const abs = nanos < 0n ? -nanos : nanos;
  const fraction = (abs % unit).toString().padStart(moneyScale, '0').replace(/0+$/, '');
  return `${sign}${abs / unit}.${fraction.padEnd(2, '0')}`;
}

/** `amount × quantity / per`, rounded half up to a nano-unit: the cost of `quantity` at a price per `per` units. */
export function priceOf(pricePerUnit: bigint, quantity: bigint, per: bigint): bigint {
  const product = pricePerUnit * quantity;
  return (product + per / 2n) / per;
}
