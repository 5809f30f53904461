#!/usr/bin/env -S node --single-threaded-gc
// The vgg-native command line: thin commands over the public API (one file
// per concern in ./cli/). Exit status 0 when done, 1 when something failed,
// 2 when the command was called wrongly; every error is one line,
// `vgg-native: <message>`, with the stack only under --verbose (or
// VGG_NATIVE_DEBUG=1, read through src/settings.ts).
// V8 collects garbage on the main thread alone (the shebang's flag): its
// parallel and concurrent GC threads otherwise compete with LibTorch's for the
// same cores, and under `serve`'s load the event loop waited for them (bench/serve.js).
import { Command } from 'commander';
import { registerBuild } from './cli/build';
import { registerClassify } from './cli/classify';
import { settleArchFlags } from './cli/common';
import { registerConvert } from './cli/convert';
import { registerDemo } from './cli/demo';
import { registerDownload } from './cli/download';
import { EXIT_OK, reportError } from './cli/exit';
import { registerExplain } from './cli/explain';
import { registerFeatures } from './cli/features';
import { registerInfo, registerRuntime } from './cli/info';
import { registerLaunch } from './cli/launch';
import { registerServe } from './cli/serve';
import { cliState } from './cli/state';
import { registerSummary } from './cli/summary';
import { registerEvaluate, registerFineTune } from './cli/train';
import { registerWeights } from './cli/weights';
import { packageVersion } from './fs/package';
import { setting } from './settings';

/** The program with every command registered. */
export function buildCli(): Command {
  const program = new Command();
  program
    .name('vgg-native')
    .description('VGG on LibTorch from Node.js: classify images, extract features, fine-tune, evaluate, convert and download weights')
    .version(packageVersion(), '-V, --version', 'print the package version')
    .option('-q, --quiet', 'no progress bars')
    .option('--verbose', 'print the stack with an error')
    // Commander's own errors come back as CommanderError, printed by run() in our one-line format.
    .exitOverride()
    .configureOutput({ outputError: () => undefined })
    .hook('preAction', (_program, action) => {
      const globals = action.optsWithGlobals() as { quiet?: boolean; verbose?: boolean };
      cliState.quiet = globals.quiet === true;
      cliState.verbose = globals.verbose === true;
      settleArchFlags(action);
    });
  registerClassify(program);
  registerFeatures(program);
  registerExplain(program);
  registerFineTune(program);
  registerEvaluate(program);
  registerInfo(program);
  registerRuntime(program);
  registerWeights(program);
  registerDownload(program);
  registerSummary(program);
  registerConvert(program);
  registerDemo(program);
  registerBuild(program);
  registerServe(program);
  registerLaunch(program);
  return program;
}

/** Parses argv and runs the command; resolves with the exit status (0, 1 or 2). */
export async function run(argv: readonly string[]): Promise<number> {
  // argv, not cliState: a usage error can stop parsing before the flags are read.
  let verbose = argv.includes('--verbose');
  try {
    // Read first, so a bad VGG_NATIVE_DEBUG fails every command (BAD_SETTING), not only failing ones.
    verbose ||= setting('debug');
    await buildCli().parseAsync(argv as string[]);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (e) {
    return reportError(e, verbose);
  }
}

if (require.main === module) {
  run(process.argv).then((code) => {
    process.exitCode = code;
  });
}
