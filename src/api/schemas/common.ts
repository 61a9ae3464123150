import { z } from 'zod';
import { errorBodySchema } from '../errors.js';

/** An enum of names read from a registry (each once): what a filter may name. */
export function enumOf(values: readonly string[]) {
  const [first, ...rest] = new Set(values);
  if (first === undefined) throw new Error('An enum needs at least one value');
  return z.enum([first, ...rest]);
}

/**
 * The instants a request may name: PostgreSQL stores no year 0, and node-postgres writes a
 * date past year 9999 in a form PostgreSQL does not read. Either reached it as a 500.
 */
const firstStorableInstant = '0001-01-01T00:00:00Z';
const lastStorableInstant = '9999-12-31T23:59:59.999Z';
const storableRange = `must be from ${firstStorableInstant} to ${lastStorableInstant}`;

/** An instant a request names (ISO 8601 with `Z` or an offset), from year 1 to year 9999. */
export function instantText() {
  return z.iso
    .datetime({ offset: true, abort: true })
    .refine(
      (value) =>
        Date.parse(value) >= Date.parse(firstStorableInstant) &&
        Date.parse(value) <= Date.parse(lastStorableInstant),
      { error: storableRange },
    );
}

/** A UTC day a request names (YYYY-MM-DD), from year 1 to year 9999. */
export function dayText() {
  return z.iso
    .date({ abort: true })
    .refine(
      (value) =>
        value >= firstStorableInstant.slice(0, 10) && value <= lastStorableInstant.slice(0, 10),
      {
        error: `must be from ${firstStorableInstant.slice(0, 10)} to ${lastStorableInstant.slice(0, 10)}`,
      },
    );
}

/** A job id in a path. */
export const idParams = z.object({ id: z.string().min(1).max(128) });

/** The `Idempotency-Key` header of the routes that create jobs. */
export const idempotencyKeySchema = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/, { error: 'must be 1 to 255 visible ASCII characters' })
  .optional();

/** A letter, digit, punctuation mark or symbol (emoji included): something a reader sees. */
const visibleCharacter = /[\p{L}\p{N}\p{P}\p{S}]/u;

/**
 * What text a person writes for a job may not hold, since it is shown back (views, the web
 * page, the Temporal Web UI, logs): control characters but the tab and line breaks (a terminal
 * escape), Unicode's line and paragraph separators, and the direction overrides that make text
 * read otherwise than it is (`invoice\u202Efdp.exe` reads as `invoiceexe.pdf`). The embeddings
 * and isolates that right-to-left text is written with are kept.
 */
const unshowableInText = /(?![\t\n\r])[\p{Cc}\u2028\u2029\u202d\u202e]/u;

/** Whether text is fit to show back: it holds nothing unshowableInText names. */
function isShowable(value: string): boolean {
  return !unshowableInText.test(value);
}

const unshowableMessage =
  'must not contain control characters (but tabs and line breaks), line or paragraph separators, or direction overrides (U+202D, U+202E)';

/**
 * Text a person writes for a job (a title, a goal): trimmed, 1 to `max` characters, not blank
 * to a reader (zero-width spaces, direction marks and lone combining marks pass a trim, yet show
 * nothing), and fit to show back.
 */
export function writtenText(max: number) {
  return z
    .string()
    .trim()
    .min(1, { abort: true })
    .max(max)
    .refine((value) => visibleCharacter.test(value), {
      error: 'must have something to read: not only spaces, zero-width or direction marks',
      abort: true,
    })
    .refine(isShowable, { error: unshowableMessage });
}

/**
 * Text a person may leave out (a cancel's reason): trimmed, at most `max` characters, none
 * when a reader would see nothing in it (blank, or only zero-width or direction marks), so no
 * message quotes invisible characters, and else fit to show back.
 */
export function optionalWrittenText(max: number) {
  return z
    .string()
    .trim()
    .max(max)
    .transform((value) => (visibleCharacter.test(value) ? value : undefined))
    .refine((value) => value === undefined || isShowable(value), { error: unshowableMessage })
    .optional();
}

/**
 * The optional `concurrencyKey` of every start request: the caller's jobs that carry the same
 * key run one at a time, in the order they were submitted; another user's equal key is
 * another line.
 */
export const concurrencyKeySchema = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,128}$/, {
    error: 'must be 1 to 128 characters: letters, digits, ".", "_", ":" or "-"',
  })
  .optional()
  .describe(
    'Jobs of yours that carry the same key run one at a time, in submission order; the later ones wait as `queued`',
  );

/** Errors every authenticated route about one job can answer. */
export const commonErrors = {
  400: errorBodySchema,
  401: errorBodySchema,
  404: errorBodySchema,
  429: errorBodySchema,
  /** DATABASE_UNAVAILABLE and the like: retry after Retry-After. */
  503: errorBodySchema,
};

/** The `?live=` flag of a job's GET route. */
export function liveQuerySchema(description: string) {
  return z.strictObject({
    live: z.enum(['true', 'false']).default('false').describe(description),
  });
}
