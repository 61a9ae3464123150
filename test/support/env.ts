/** What `npm test` (test/run.ts) prepared for the test files. */
export interface TestEnvironment {
  temporalAddress: string;
  temporalNamespace: string;
  postgresUrl: string;
  databaseTemplate: string;
  runId: string;
  temporalCliPath: string;
  temporalTestServerPath: string;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: run the tests through \`npm test\`, which starts what they need`,
    );
  }
  return value;
}

export const testEnv: TestEnvironment = {
  temporalAddress: required('TEST_TEMPORAL_ADDRESS'),
  temporalNamespace: required('TEST_TEMPORAL_NAMESPACE'),
  postgresUrl: required('TEST_POSTGRES_URL'),
  databaseTemplate: required('TEST_DATABASE_TEMPLATE'),
  runId: required('TEST_RUN_ID'),
  temporalCliPath: required('TEMPORAL_CLI_PATH'),
  temporalTestServerPath: required('TEMPORAL_TEST_SERVER_PATH'),
};
