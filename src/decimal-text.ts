import { z } from 'zod';

const decimalInteger = /^\d{1,15}$/;
const decimalFraction = /^\d{1,15}(\.\d{1,9})?$/;

/**
 * A number written as text, as query strings, environment variables and command-line flags carry
 * one: decimal digits (`fractions`: and a decimal point) and nothing else, then checked by
 * `number` (its bounds). `z.coerce.number()` takes whatever `Number()` does: "0x10", "1e1",
 * "Infinity", and "" as 0. Surrounding blanks are dropped, as a shell or an .env file leaves
 * them; `exact` refuses them, as a request's parameter is sent exactly as the client wrote it.
 * Documented (OpenAPI) as the number it stands for, not as the text.
 */
export function decimalText(number: z.ZodNumber, { fractions = false, exact = false } = {}) {
  const text = exact ? z.string() : z.string().trim();
  return text
    .regex(fractions ? decimalFraction : decimalInteger, {
      error: fractions
        ? 'expected a number in decimal digits, such as 12 or 0.5'
        : 'expected a whole number in decimal digits',
    })
    .transform(Number)
    .pipe(number)
    .meta({
      type: number.isInt ? 'integer' : 'number',
      pattern: undefined,
      ...(number.minValue !== null && Number.isFinite(number.minValue)
        ? { minimum: number.minValue }
        : {}),
      ...(number.maxValue !== null && Number.isFinite(number.maxValue)
        ? { maximum: number.maxValue }
        : {}),
    });
}

/**
 * The number `text` stands for when it is decimal digits; any other text unchanged, for a schema
 * that expects a number to refuse.
 */
export function numberFromDecimalText(text: string): number | string {
  return decimalInteger.test(text.trim()) ? Number(text) : text;
}
