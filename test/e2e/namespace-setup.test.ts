// A cluster's namespace is set up once by an operator (`npm run temporal:setup`): registered, with
// the job search attributes. Temporal refuses every job start in one without them; the worker
// used to start and poll it all the same, and the API to report itself ready, each start then
// answering 500. Now the worker refuses to start and /readyz names what is missing.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { createTemporalAccess } from '../../src/temporal-client.js';
import { namespaceProblem } from '../../src/temporal-namespace.js';
import { prepareNamespace } from '../../temporal/namespace.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { testEnv } from '../support/env.js';
import { eventually } from '../support/eventually.js';
import { startHarness } from '../support/harness.js';
import { startService } from '../support/processes.js';

const { IndexedValueType } = proto.temporal.api.enums.v1;

interface NotReady {
  error?: { code: string; details: { checks: Record<string, { ok: boolean; error?: string }> } };
}

describe('a namespace not set up for jobs', () => {
  let connection: Connection;
  let database: TestDatabase;
  const cleanups: (() => Promise<unknown>)[] = [];
  before(async () => {
    connection = await Connection.connect({ address: testEnv.temporalAddress });
    cleanups.push(() => connection.close());
    database = await createTestDatabase();
    cleanups.push(() => database.drop());
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** A namespace registered as an operator's `temporal operator namespace create` leaves it. */
  async function bareNamespace(): Promise<string> {
    const namespace = `bare-${randomUUID().slice(0, 8)}`;
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs('1 day'),
    });
    await eventually(
      () => connection.workflowService.describeNamespace({ namespace }),
      () => true,
      { what: `namespace ${namespace} visible`, timeoutMs: 30_000, intervalMs: 200 },
    );
    return namespace;
  }

  /** The worker process against `namespace`: its exit code and what it printed. */
  async function workerAgainst(
    namespace: string,
  ): Promise<{ exitCode: number | null; output: string }> {
    const worker = startService(
      'src/worker/worker-process.ts',
      {
        DATABASE_URL: database.url,
        TEMPORAL_ADDRESS: testEnv.temporalAddress,
        TEMPORAL_NAMESPACE: namespace,
        TEMPORAL_TASK_QUEUE: `namespace-setup-${randomUUID().slice(0, 8)}`,
      },
      ['--queues', 'storage'],
    );
    cleanups.push(async () => worker.stop());
    // It exits, or says it started (and is stopped rather than left polling); waitForLine
    // rejects once the process has exited, so only a start settles it.
    const started = worker.waitForLine(/worker started/).then(
      () => 'started' as const,
      () => new Promise<never>(() => undefined),
    );
    const exitCode = await Promise.race([worker.exited, started]);
    return {
      exitCode: exitCode === 'started' ? await worker.stop() : exitCode,
      output: worker.output.join('\n'),
    };
  }

  it('a worker refuses to start, naming TEMPORAL_NAMESPACE, what the namespace lacks and the setup command', async () => {
    const missing = `missing-${randomUUID().slice(0, 8)}`;
    const absent = await workerAgainst(missing);
    assert.equal(absent.exitCode, 1, absent.output);
    assert.match(
      absent.output,
      new RegExp(
        `TEMPORAL_NAMESPACE: namespace "${missing}" does not exist: run \`npm run temporal:setup\``,
      ),
    );

    const bare = await bareNamespace();
    const refused = await workerAgainst(bare);
    assert.equal(refused.exitCode, 1, refused.output);
    assert.match(
      refused.output,
      new RegExp(
        `TEMPORAL_NAMESPACE: namespace "${bare}" is not set up for jobs, .*: JobKind \\(Keyword\\) is missing, JobType \\(Keyword\\) is missing, JobStatus \\(Keyword\\) is missing, UserId \\(Keyword\\) is missing, JobAttempt \\(Int\\) is missing, JobFailureCode \\(Keyword\\) is missing; run \`npm run temporal:setup\``,
      ),
    );
    assert.doesNotMatch(refused.output, /worker started/);

    // An attribute of another type is as good as missing: starts that set it are refused.
    await connection.operatorService.addSearchAttributes({
      namespace: bare,
      searchAttributes: {
        JobKind: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        JobType: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        JobStatus: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        UserId: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        JobAttempt: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        JobFailureCode: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
      },
    });
    const mistyped = await workerAgainst(bare);
    assert.equal(mistyped.exitCode, 1, mistyped.output);
    assert.match(
      mistyped.output,
      new RegExp(
        `: JobAttempt \\(Int\\) is registered as Keyword; a search attribute's type cannot be changed: remove it \\(\`temporal operator search-attribute remove --namespace ${bare} --name JobAttempt\`\\), then run \`npm run temporal:setup\``,
      ),
    );

    // Setup adds only what is missing, so it cannot mend this: it says so, rather than answer
    // as if the namespace were ready, and changes nothing.
    await assert.rejects(
      prepareNamespace(connection, bare),
      new RegExp(
        `namespace "${bare}" holds job search attributes of another type: JobAttempt \\(Int\\) is registered as Keyword; .*search-attribute remove --namespace ${bare} --name JobAttempt`,
      ),
    );
  });

  // The frontend describes a namespace just registered at once, while its operator service
  // answers NOT_FOUND until its namespace cache refreshes: the first setup of every cluster
  // namespace failed there, after registering it.
  it('setup registers a missing namespace and its search attributes in one run', async () => {
    const namespace = `fresh-${randomUUID().slice(0, 8)}`;
    assert.deepEqual(await prepareNamespace(connection, namespace), {
      registered: true,
      addedSearchAttributes: [
        'JobKind',
        'JobType',
        'JobStatus',
        'UserId',
        'JobAttempt',
        'JobFailureCode',
      ],
    });
    assert.equal(await namespaceProblem(connection, namespace), null);
    assert.deepEqual(await prepareNamespace(connection, namespace), {
      registered: false,
      addedSearchAttributes: [],
    });
  });

  it('the API is not ready, naming what the namespace lacks, until it is set up', async () => {
    const namespace = await bareNamespace();
    const temporal = createTemporalAccess({ address: testEnv.temporalAddress }, namespace);
    cleanups.push(() => temporal.close());
    // The Google provider does not need ffmpeg: readiness turns on Temporal alone.
    const h = await startHarness({ temporal, env: { VLOG_PROVIDER: 'google' } });
    cleanups.push(() => h.stop());

    const refused = await h.api.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(refused.statusCode, 503, refused.body);
    const temporalCheck = refused.json<NotReady>().error?.details.checks['temporal'];
    assert.equal(temporalCheck?.ok, false);
    assert.match(
      temporalCheck?.error ?? '',
      new RegExp(
        `namespace "${namespace}" is not set up for jobs, .*JobKind \\(Keyword\\) is missing.*npm run temporal:setup`,
      ),
    );

    await prepareNamespace(connection, namespace);
    const ready = await h.api.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 200, ready.body);
  });
});
