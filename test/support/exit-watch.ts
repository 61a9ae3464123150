// Preloaded by test/run.ts into the process of each test file. The runner waits for a file's
// process to exit, so a handle left open after its tests (a fake's timer, a child process, a
// socket) held the whole run, silently, up to CI's limit. Once the file's tests and hooks have
// run, a timer that keeps nothing alive waits; if the process is still there when it fires,
// something else holds it: the file fails, naming what is open.
import { after } from 'node:test';

/** Time a file's process gets after its tests to close what it opened (its last hooks run in it). */
const graceMs = Number(process.env['TEST_EXIT_GRACE_MS'] ?? 120_000);

// Only in a file's own process, not in the runner that starts them.
if (process.env['NODE_TEST_CONTEXT']?.startsWith('child')) {
  after(() => {
    setTimeout(() => {
      process.stderr.write(
        `still running ${graceMs / 1000} s after its tests ended, held open by ${process
          .getActiveResourcesInfo()
          .join(', ')}: failed so that it does not hold the run\n`,
      );
      process.exit(1);
    }, graceMs).unref();
  });
}
