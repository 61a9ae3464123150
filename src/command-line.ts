/**
 * What the operator commands share (`npm run replay`, `npm run redrive`, `npm run token`, the
 * worker's flags), so each answers a shell the same way: `--help` prints the usage on stdout and
 * exits 0; arguments the command cannot take exit 2 with one line naming the flag or argument,
 * then the usage, on stderr. Exit 1 is left to failures of the work itself.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { runEntryPoint } from './entry-point.js';

/** Arguments a command cannot take; the message names the flag or argument. */
export class UsageError extends Error {}

/**
 * `parseArgs`, its refusals (an unknown option, a missing or ambiguous value) as a
 * one-line UsageError, and a flag given twice refused too: parseArgs would keep the last one.
 */
export function parseCommandLine<T extends ParseArgsConfig>(
  config: T,
): ReturnType<typeof parseArgs<T>> {
  let parsed;
  try {
    parsed = parseArgs({ ...config, tokens: true });
  } catch (error) {
    throw new UsageError((error as Error).message.replaceAll('\n', ' '));
  }
  const named = parsed.tokens!.flatMap((token) => (token.kind === 'option' ? [token] : []));
  const repeated = named.find(
    (token, index) =>
      !config.options?.[token.name]?.multiple &&
      named.findIndex((other) => other.name === token.name) !== index,
  );
  if (repeated) throw new UsageError(`${repeated.rawName}: given more than once`);
  return parsed as ReturnType<typeof parseArgs<T>>;
}

/**
 * Runs a command as runEntryPoint does, after `--help` (anywhere before a `--`) has printed
 * `usage`; a UsageError from `main` is refused with exit code 2.
 */
export function runCommand(usage: string, main: () => Promise<void>): void {
  const { tokens } = parseArgs({ strict: false, allowPositionals: true, tokens: true });
  if (tokens.some((token) => token.kind === 'option' && token.name === 'help')) {
    console.log(usage);
    process.exit(0);
  }
  runEntryPoint(async () => {
    try {
      await main();
    } catch (error) {
      if (error instanceof UsageError) {
        console.error(`${error.message}\n${usage}`);
        process.exit(2);
      }
      throw error;
    }
  });
}

/**
 * Runs a command that is set by environment variables alone (`npm start`, `npm run api`): an
 * argument meant for it (`--port 8080`) is refused with exit code 2, not ignored.
 */
export function runWithoutArguments(command: string, main: () => Promise<void>): void {
  const usage = `usage: ${command}
  takes no arguments: it is set by environment variables (docs/configuration.md), e.g. API_PORT`;
  runCommand(usage, async () => {
    parseCommandLine({ args: process.argv.slice(2), options: {} });
    await main();
  });
}
