import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type DatabaseOptions, type Db } from '../../src/db/database.js';
import { testEnv } from './env.js';

export interface TestDatabase {
  db: Db;
  url: string;
  name: string;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: testEnv.postgresUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function urlFor(name: string): string {
  const url = new URL(testEnv.postgresUrl);
  url.pathname = `/${name}`;
  return url.href;
}

/** A fresh database copied from the run's migrated template, dropped by `drop()`. */
export async function createTestDatabase(
  options: Pick<DatabaseOptions, 'onQuery'> = {},
): Promise<TestDatabase> {
  const name = `${testEnv.runId}_${randomUUID().slice(0, 8)}`;
  await admin(async (client) => {
    // Copies from one template cannot overlap (55006: template in use): retry until ours runs.
    for (let attempt = 0; ; attempt += 1) {
      try {
        await client.query(`create database "${name}" template "${testEnv.databaseTemplate}"`);
        return;
      } catch (error) {
        if ((error as { code?: string }).code !== '55006' || attempt > 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200));
      }
    }
  });
  const url = urlFor(name);
  const db = await openDatabase({ databaseUrl: url, dataDir: '.', maxConnections: 5, ...options });
  return {
    db,
    url,
    name,
    async drop() {
      await db.destroy();
      await admin((client) => client.query(`drop database if exists "${name}" with (force)`));
    },
  };
}

/** An empty database with no migrations applied, for migration tests. */
export async function createEmptyDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${testEnv.runId}_${randomUUID().slice(0, 8)}`;
  await admin((client) => client.query(`create database "${name}"`));
  return {
    url: urlFor(name),
    drop: () =>
      admin((client) => client.query(`drop database if exists "${name}" with (force)`)).then(
        () => undefined,
      ),
  };
}
