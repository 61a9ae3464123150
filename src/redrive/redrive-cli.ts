// `npm run redrive -- --group <fingerprint> | --jobs <id,id…> [--limit N] [--dry-run]`: an
// operator's re-drive of failed jobs from a shell, through the same service as
// `POST /api/admin/redrives` (src/api/services/redrives.ts). Prints the outcome as JSON, and
// exits 1 when a job it was asked for was skipped, so a script sees that without reading it.
import os from 'node:os';
import { pino } from 'pino';
import { redriveBodySchema } from '../api/schemas/admin.js';
import { jobKindRegistry } from '../kinds/index.js';
import { budgetDefaults } from '../api/services/budgets.js';
import { createJobActions } from '../api/services/job-actions.js';
import { createRedrives } from '../api/services/redrives.js';
import { loadConfig, requireSharedServices } from '../config.js';
import { openDatabase } from '../db/database.js';
import { parseCommandLine, runCommand, UsageError } from '../command-line.js';
import { parseFingerprint } from '../jobs/failure-fingerprint.js';
import { numberFromDecimalText } from '../decimal-text.js';
import { createLogger } from '../logger.js';
import { createTemporalAccess, temporalEndpoint } from '../temporal-client.js';

const usage = `usage: npm run redrive -- (--group <fingerprint> | --jobs <id,id…>) [--limit N] [--dry-run]
  --group    a failure group's fingerprint, kind:stage:code:provider, as GET /api/admin/failure-groups lists it
  --jobs     job ids, comma-separated
  --limit    with --group: most jobs taken, those failed longest ago first (default 100)
  --dry-run  print what would run and change nothing
Exits 0 when every job asked for was re-driven (with --dry-run: would be), 1 when one was skipped.
Reads DATABASE_URL, TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE as the API does.`;

/** The flag a field of the request schema is given by. */
const flags: Record<string, string> = { group: '--group', jobIds: '--jobs', limit: '--limit' };

runCommand(usage, async () => {
  const { values } = parseCommandLine({
    options: {
      group: { type: 'string' },
      jobs: { type: 'string' },
      limit: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
    },
  });
  // The request schema says the same in the API's field names.
  if ((values.group === undefined) === (values.jobs === undefined)) {
    throw new UsageError('give either --group or --jobs, not both and not neither');
  }
  if (values.limit !== undefined && values.group === undefined) {
    throw new UsageError('--limit: applies only with --group');
  }
  const kinds = jobKindRegistry.map(({ declaration }) => declaration.kind);
  const request = redriveBodySchema(kinds).safeParse({
    group: values.group,
    jobIds: values.jobs?.split(',').filter(Boolean),
    limit: values.limit === undefined ? undefined : numberFromDecimalText(values.limit),
    dryRun: values['dry-run'],
  });
  if (!request.success) {
    throw new UsageError(
      request.error.issues
        .map((issue) => `${flags[String(issue.path[0])] ?? issue.path.join('.')}: ${issue.message}`)
        .join('\n'),
    );
  }
  const { group, jobIds, limit, dryRun } = request.data;

  const config = loadConfig();
  requireSharedServices(config, 'npm run redrive');
  // The log goes to stderr: stdout carries the outcome alone, for scripts to read.
  const logger = createLogger(config, 'redrive', pino.destination(2));
  // From another checkout than the one deployed, it must not migrate the service's database.
  const db = await openDatabase({
    databaseUrl: config.DATABASE_URL,
    dataDir: config.dataDir,
    schema: 'check',
  });
  const temporal = createTemporalAccess(temporalEndpoint(config), config.TEMPORAL_NAMESPACE);
  try {
    const redrives = createRedrives({
      db,
      temporal,
      actions: createJobActions(
        temporal,
        { timeoutMs: config.JOB_CONTROL_TIMEOUT_MS },
        { db, budgets: budgetDefaults(config), maxJobsInFlight: config.USER_MAX_JOBS_IN_FLIGHT },
      ),
      budgets: budgetDefaults(config),
      maxJobsInFlight: config.USER_MAX_JOBS_IN_FLIGHT,
      timeoutMs: config.JOB_CONTROL_TIMEOUT_MS,
      logger,
    });
    const outcome = await redrives.redrive(
      group === undefined ? { jobIds: jobIds! } : { group: parseFingerprint(group)!, limit },
      { dryRun, requestedBy: `cli:${os.userInfo().username}` },
    );
    console.log(JSON.stringify(outcome, null, 2));
    if (outcome.skipped.length > 0) process.exitCode = 1;
  } finally {
    await temporal.close();
    await db.destroy();
  }
});
