// How the command line ends: exit status 0 (done), 1 (something failed:
// a missing file, a network error, a bad checkpoint) or 2 (the command was
// called wrongly), and one line on stderr, `vgg-native: <message>`, with
// the stack only when asked for (--verbose or VGG_NATIVE_DEBUG=1).
import { CommanderError } from 'commander';
import { errorCode } from '../errors';
import { UsageError } from './common';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Node's codes for a bad argument: from the CLI they mean a bad flag value. */
const ARGUMENT_CODES = new Set(['ERR_INVALID_ARG_TYPE', 'ERR_OUT_OF_RANGE']);

/** Whether `e` says the command was called wrongly (rather than that the work failed). */
export function isUsageError(e: unknown): boolean {
  if (e instanceof CommanderError || e instanceof UsageError) return true;
  const code = errorCode(e);
  return code !== undefined && ARGUMENT_CODES.has(code);
}

/** The message of `e` as one line (multi-line messages are joined with '; '). */
export function oneLine(e: unknown): string {
  if (e instanceof CommanderError) {
    const hint = e.code === 'commander.unknownCommand' ? '' : ' (see --help)';
    return `${e.message.replace(/^error: /, '')}${hint}`.split('\n')[0];
  }
  const message = (e as Error)?.message ?? String(e);
  return message
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join('; ');
}

/**
 * Prints `e` on stderr and returns the exit status it means.
 * @param verbose - add the stack (and causes) after the line
 */
export function reportError(e: unknown, verbose: boolean): number {
  if (e instanceof CommanderError && (e.exitCode === 0 || e.code === 'commander.help' || e.code === 'commander.helpDisplayed')) return e.exitCode;
  process.stderr.write(`vgg-native: ${oneLine(e)}\n`);
  if (verbose && !(e instanceof CommanderError)) {
    let cause: unknown = e;
    while (cause instanceof Error) {
      process.stderr.write(`${cause.stack ?? cause.message}\n`);
      cause = cause.cause;
      if (cause instanceof Error) process.stderr.write('caused by: ');
    }
  }
  return isUsageError(e) ? EXIT_USAGE : EXIT_FAILURE;
}
