// `summary`: parameters and multiply-adds, layer by layer.
import type { Command } from 'commander';
import { fmtCount, intArg, withModel, withModelFlags, type ModelFlags } from './common';
import { printJson } from './json';

export function registerSummary(program: Command): void {
  withModelFlags(program.command('summary').description('parameters and multiply-adds, layer by layer (vgg16 unless --arch/--model/--weights)'))
    .option('-s, --size <n>', 'input height and width', intArg('--size', 32), 224)
    .option('--json', 'print one JSON document')
    .action(async (flags: ModelFlags & { size: number; json?: boolean }) => {
      await withModel(flags.arch || flags.weights ? flags : { ...flags, arch: 'vgg16' }, async (model) => {
        const s = model.summary(flags.size);
        if (flags.json) {
          printJson(s);
          return;
        }
        for (const l of s.layers) {
          console.log(
            `${l.name.padEnd(14)} ${l.type.padEnd(26)} ${JSON.stringify(l.outShape).padEnd(20)} params ${fmtCount(l.params).padStart(9)}  MACs ${fmtCount(l.macs).padStart(9)}`,
          );
        }
        console.log(`${s.arch}: ${fmtCount(s.params)} parameters, ${fmtCount(s.macs)} multiply-adds at ${s.inputSize.join('x')}`);
      });
    });
}
