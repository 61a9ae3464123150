import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresDialect,
  PostgresIntrospector,
  PostgresQueryCompiler,
  sql,
  type CompiledQuery,
  type LogEvent,
  type PostgresPool,
  type PostgresPoolClient,
  type QueryResult,
  type RawBuilder,
} from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import pg from 'pg';
import { StartupError, withoutCredentials } from '../config.js';
import { migrateToLatest, schemaDifference } from './migrate.js';
import type { Database } from './schema.js';
import { makeDirectory } from '../directories.js';

export type Db = Kysely<Database>;

export interface DatabaseOptions {
  /** PostgreSQL connection string; without it an embedded PGlite database is used. */
  databaseUrl?: string | undefined;
  /** Folder that holds the embedded database when no URL is given. */
  dataDir: string;
  /** Pool size for PostgreSQL. */
  maxConnections?: number;
  /** Called with every statement sent, as sent (tests count what a request costs with it). */
  onQuery?: (query: CompiledQuery) => void;
  /**
   * `migrate` (the default, for the services): applies pending migrations. `check`, for a
   * one-off tool an operator may run from another checkout than the one deployed (`npm run
   * redrive`): refuses a database whose schema is not this code's, and changes nothing.
   */
  schema?: 'migrate' | 'check';
}

/**
 * Opens the database and applies pending migrations (or, with `schema: 'check'`, checks there are
 * none). The same migrations serve PostgreSQL and the embedded PGlite default.
 */
export async function openDatabase(options: DatabaseOptions): Promise<Db> {
  const { onQuery, databaseUrl } = options;
  const cannotOpen = (error: unknown) =>
    databaseUrl
      ? new StartupError(
          'DATABASE_URL',
          `cannot use the database at ${withoutCredentials(databaseUrl)}`,
          error,
        )
      : new StartupError(
          'DATA_DIR',
          `cannot open the embedded database in ${path.join(options.dataDir, 'pglite')}`,
          error,
        );
  const db = new Kysely<Database>({
    dialect: await createDialect(options).catch((error: unknown) => {
      throw cannotOpen(error);
    }),
    ...(onQuery && {
      log: (event: LogEvent) => {
        if (event.level === 'query') onQuery(event.query);
      },
    }),
  });
  try {
    if (options.schema === 'check') await requireCurrentSchema(db);
    else await migrateToLatest(db);
  } catch (error) {
    await db.destroy();
    throw cannotOpen(error);
  }
  return db;
}

async function requireCurrentSchema(db: Db): Promise<void> {
  const { missing, unknown } = await schemaDifference(db);
  const problems = [
    ...(missing.length > 0
      ? [
          `it lacks migrations ${missing.join(', ')}: deploy this version first (its API or worker applies them)`,
        ]
      : []),
    ...(unknown.length > 0
      ? [`it has migrations ${unknown.join(', ')} of a newer version: run that version's command`]
      : []),
  ];
  if (problems.length > 0) throw new Error(`its schema is not this code's: ${problems.join('; ')}`);
}

async function createDialect(options: DatabaseOptions) {
  if (options.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: 5_000,
    });
    // An idle connection the server closes (a restart, a failover) is dropped from the pool and
    // the next query opens a new one; unhandled, the error would crash the process.
    pool.on('error', () => undefined);
    // So does a connection lost while a query holds it: the query fails by itself, and without
    // a listener the client's own 'error' event would crash the process.
    pool.on('connect', (client) => client.on('error', () => undefined));
    return new PostgresDialect({ pool: preparingPool(pool) });
  }
  const folder = path.join(options.dataDir, 'pglite');
  await makeDirectory(folder);
  const pglite = await PGlite.create(folder);
  // PGlite runs no WAL writer: a commit that does not flush stays in memory until a later one
  // does, so a crash of its process (of `npm start`) lost every projection write since the last
  // synchronous one, seconds or minutes of them, not the moment PostgreSQL's writer leaves. Its
  // one session keeps this setting, and asyncCommit flushes on it.
  await pglite.exec(`set ${asyncCommitSetting} = 'on'`);
  return new PGliteDialect(pglite);
}

/** Names of the statements sent prepared (preparedStatement), by their SQL text. */
const preparedStatementNames = new Map<string, string>();

/**
 * Marks a compiled statement to be sent as a named prepared statement on PostgreSQL: each
 * connection parses and plans it once, then only binds and runs it. For the few statements run
 * on every request of a hot path (a status poll), whose SQL text never varies; a statement with
 * values written into its text would prepare one more statement on every connection each time.
 * It names its columns: a prepared `select *` fails on every connection once a migration adds
 * one ("cached plan must not change result type").
 */
export function preparedStatement<T>(query: CompiledQuery<T>): CompiledQuery<T> {
  if (!preparedStatementNames.has(query.sql)) {
    preparedStatementNames.set(query.sql, `vlogflow_${preparedStatementNames.size + 1}`);
  }
  return query;
}

/** A named placeholder of a statement compiled once (statementOnce). */
class StatementParameter {
  constructor(readonly name: string) {}
}

/** Where a statement compiled once takes the value `name` of each call's parameters. */
export type StatementParameterOf<Params> = <Name extends keyof Params & string>(
  name: Name,
) => RawBuilder<Params[Name]>;

/**
 * A statement whose SQL text never varies, compiled on its first use and sent prepared
 * (preparedStatement) ever after, each call binding only its parameters: for the statements
 * every job runs, whose building and compiling by Kysely cost the API and the worker more CPU
 * than PostgreSQL took to run them. `build` writes the statement with `param(name)` wherever a
 * call's value goes; it must not branch on anything else a call gives.
 */
export function statementOnce<Params extends Record<string, unknown>, Row>(
  build: (db: Db, param: StatementParameterOf<Params>) => CompiledQuery<Row>,
): (db: Db, params: Params) => Promise<QueryResult<Row>> {
  let compiled: CompiledQuery<Row> | undefined;
  return (db, params) => {
    compiled ??= preparedStatement(
      build(db, (name) => sql.val(new StatementParameter(name)) as RawBuilder<never>),
    );
    return db.executeQuery<Row>({
      ...compiled,
      parameters: compiled.parameters.map((value) =>
        value instanceof StatementParameter ? params[value.name] : value,
      ),
    });
  };
}

/** The pool as Kysely reads it, its connections sending prepared statements by name. */
function preparingPool(pool: pg.Pool): PostgresPool {
  const clients = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  return {
    async connect() {
      const client = await pool.connect();
      let preparing = clients.get(client);
      if (!preparing) {
        preparing = {
          // Kysely calls only this form: no cursor is configured, so it streams no query.
          query: ((text: string, parameters: readonly unknown[]) =>
            client.query({
              name: preparedStatementNames.get(text),
              text,
              values: [...parameters],
            })) as unknown as PostgresPoolClient['query'],
          release: () => client.release(),
        };
        clients.set(client, preparing);
      }
      return preparing;
    },
    end: () => pool.end(),
  };
}

/**
 * A database that is never reached (Kysely's DummyDriver: every query answers no rows), for an
 * app built only to describe its routes, as the OpenAPI document of the web page's types is.
 */
export function unreachableDatabase(): Db {
  return new Kysely<Database>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new PostgresIntrospector(db),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
  });
}

/** The session setting that, where set, is the `synchronous_commit` asyncCommit asks for. */
const asyncCommitSetting = 'vlogflow.async_commit';

/**
 * A select-list item (or FROM item, as `${asyncCommit} as async_commit`) that lets the
 * statement's own transaction commit without waiting for its WAL to reach the disk
 * (`synchronous_commit = off` for that transaction only; nothing else changes). On PostgreSQL
 * that flush was most of a short write's time (1.5–1.9 ms p50 against 0.1 ms without it on the
 * development machine). For writes whose loss in a database crash (the last few hundred
 * milliseconds of commits, never a partial one) is harmless or repaired: a rate-limit count, a
 * job's projection (the workflow's next update writes over it; the job reconciler ends a job
 * whose end was lost). Inside an explicit transaction it applies to the whole transaction. A
 * session that sets `vlogflow.async_commit` (the embedded database's) commits at that level.
 */
export const asyncCommit = sql`(select set_config('synchronous_commit', coalesce(nullif(current_setting(${sql.lit(asyncCommitSetting)}, true), ''), 'off'), true))`;

/** Cheap round trip used by readiness checks. */
export async function pingDatabase(db: Db): Promise<void> {
  await sql`select 1`.execute(db);
}

/** Socket-level codes of a database that cannot be reached. */
const unreachableCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EPIPE',
]);

/**
 * Whether a query failed because the database could not be reached or dropped the connection
 * (rather than because of the query): the caller may try again once it is back.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (unreachableCodes.has(code)) return true;
    // SQLSTATE class 08 (connection exception), class 28 (the server refuses the credentials:
    // changed by an operator, a fix away, not the query's fault), shutdown, not accepting
    // connections, too many.
    if (/^(08|28)/.test(code) || ['57P01', '57P02', '57P03', '53300'].includes(code)) return true;
  }
  // node-postgres reports a dropped socket and a pool wait that timed out only by message; a
  // database closed to connections (ALLOW_CONNECTIONS false) is a 55000, a code other states
  // share, so by its message too.
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|is not currently accepting connections/.test(
    error.message,
  );
}
