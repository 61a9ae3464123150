/**
 * The retry of a short database read or write a job cannot go on without (its projection, its
 * line, its provider turn, a charge owed): without limit while the database is away, and at
 * most 10 s apart, so that a job's status catches up within seconds once it is back.
 */
export const databaseRetry = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '10s',
} as const;
