#!/usr/bin/env node
// The vgg-native command line: thin commands over the public API (one file
// per concern in ./cli/). Every error ends as one line, `vgg-native: <message>`,
// and exit code 1; VGG_NATIVE_DEBUG=1 adds the stack.
import { Command, CommanderError } from 'commander';
import { registerClassify } from './cli/classify';
import { registerFeatures } from './cli/features';
import { registerConvert, registerRuntime, registerSummary } from './cli/info';
import { registerEvaluate, registerFineTune } from './cli/train';

export function buildCli(): Command {
  const program = new Command();
  program.name('vgg-native')
    .description('VGG on LibTorch from Node.js: classify images, extract features, fine-tune, evaluate, convert weights')
    // Commander's own errors come back as CommanderError, printed by run() in our one-line format.
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  registerClassify(program);
  registerFeatures(program);
  registerFineTune(program);
  registerEvaluate(program);
  registerRuntime(program);
  registerSummary(program);
  registerConvert(program);
  return program;
}

/** Parses argv and runs the command; resolves with the exit code. */
export async function run(argv: readonly string[]): Promise<number> {
  try {
    await buildCli().parseAsync(argv as string[]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return 0; // --help, --version
      if (e.code === 'commander.help' || e.code === 'commander.helpDisplayed') return e.exitCode;
      const hint = e.code === 'commander.unknownCommand' ? '' : ' (see --help)';
      process.stderr.write(`vgg-native: ${e.message.replace(/^error: /, '')}${hint}\n`);
      return 1;
    }
    const err = e as Error;
    process.stderr.write(`vgg-native: ${err?.message ?? String(e)}\n`);
    if (process.env.VGG_NATIVE_DEBUG) process.stderr.write(`${err?.stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  run(process.argv).then((code) => {
    process.exitCode = code;
  });
}
