// A database that refuses connections is an outage (503, a write deferred, an activity retried),
// never a failure of the request or the job: each way PostgreSQL says so, from a real server.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { isDatabaseUnavailable } from '../../src/db/database.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { testEnv } from '../support/env.js';

async function connectionError(url: string): Promise<unknown> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    await client.end();
    return null;
  } catch (error) {
    return error;
  }
}

describe('isDatabaseUnavailable', () => {
  let test: TestDatabase;
  const admin = new pg.Client({ connectionString: testEnv.postgresUrl });
  before(async () => {
    test = await createTestDatabase();
    await admin.connect();
  });
  after(async () => {
    await admin.query(
      `alter database "${new URL(test.url).pathname.slice(1)}" allow_connections true`,
    );
    await admin.end();
    await test.drop();
  });

  it('is true of a database closed to connections and of credentials refused', async () => {
    await test.db.destroy();
    const name = new URL(test.url).pathname.slice(1);
    await admin.query(`alter database "${name}" allow_connections false`);
    const closed = await connectionError(test.url);
    assert.match(String(closed), /is not currently accepting connections/);
    assert.equal(isDatabaseUnavailable(closed), true);

    const unknownRole = new URL(testEnv.postgresUrl);
    unknownRole.username = 'vlogflow_no_such_role';
    const refused = await connectionError(unknownRole.href);
    assert.equal((refused as { code?: string }).code?.slice(0, 2), '28');
    assert.equal(isDatabaseUnavailable(refused), true);
  });

  it('is false of an error of the query itself', async () => {
    const error = await admin
      .query('select * from no_such_table')
      .catch((caught: unknown) => caught);
    assert.equal(isDatabaseUnavailable(error), false);
  });
});
