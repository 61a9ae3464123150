/** What `npm test` (test/run.ts) prepared for the test files. */
export interface TestEnvironment {
  temporalAddress: string;
  temporalNamespace: string;
  postgresUrl: string;
  databaseTemplate: string;
  runId: string;
  temporalCliPath: string;
  temporalTestServerPath: string;
  /** Prometheus's rule checker, and Prometheus itself (ops/prometheus/install.sh). */
  promtoolPath: string;
  prometheusPath: string;
  /** The browser the browser tests drive (test/browser/install.sh). */
  chromiumPath: string;
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

// Read when used, not when imported: scripts that share test support (npm run
// histories:record) run outside `npm test` and never touch these.
export const testEnv: TestEnvironment = {
  get temporalAddress() {
    return required('TEST_TEMPORAL_ADDRESS');
  },
  get temporalNamespace() {
    return required('TEST_TEMPORAL_NAMESPACE');
  },
  get postgresUrl() {
    return required('TEST_POSTGRES_URL');
  },
  get databaseTemplate() {
    return required('TEST_DATABASE_TEMPLATE');
  },
  get runId() {
    return required('TEST_RUN_ID');
  },
  get temporalCliPath() {
    return required('TEMPORAL_CLI_PATH');
  },
  get temporalTestServerPath() {
    return required('TEMPORAL_TEST_SERVER_PATH');
  },
  get promtoolPath() {
    return required('TEST_PROMTOOL_PATH');
  },
  get prometheusPath() {
    return required('TEST_PROMETHEUS_PATH');
  },
  get chromiumPath() {
    return required('TEST_CHROMIUM_PATH');
  },
};
