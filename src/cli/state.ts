// The global flags of one CLI run (--quiet, --verbose), set once before the
// command's action; read by the progress bars and the error printer.

/** The global flags, set once per run before the command's action. */
export const cliState = { quiet: false, verbose: false };
