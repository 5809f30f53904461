// `runtime`, `summary` and `convert`: the commands that need no images.
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { runtime } from '../runtime';
import { fmtCount, intArg, UsageError, withModel, withModelFlags, type ModelFlags } from './common';

export function registerRuntime(program: Command): void {
  program.command('runtime').description('show the LibTorch build, CUDA and threads').action(() => {
    const r = runtime();
    console.log(JSON.stringify({ ...r, parallelInfo: undefined }, null, 2));
  });
}

export function registerSummary(program: Command): void {
  withModelFlags(program.command('summary').description('parameters and multiply-adds, layer by layer (vgg16 unless --arch/--weights)'))
    .option('-s, --size <n>', 'input height and width', intArg('--size', 32), 224)
    .option('--json', 'print JSON')
    .action(async (flags: ModelFlags & { size: number; json?: boolean }) => {
      await withModel(flags.arch || flags.weights ? flags : { ...flags, arch: 'vgg16' }, async (model) => {
        const s = model.summary(flags.size);
        if (flags.json) {
          console.log(JSON.stringify(s, null, 2));
          return;
        }
        for (const l of s.layers) {
          console.log(`${l.name.padEnd(14)} ${l.type.padEnd(26)} ${JSON.stringify(l.outShape).padEnd(20)} params ${fmtCount(l.params).padStart(9)}  MACs ${fmtCount(l.macs).padStart(9)}`);
        }
        console.log(`${s.arch}: ${fmtCount(s.params)} parameters, ${fmtCount(s.macs)} multiply-adds at ${s.inputSize.join('x')}`);
      });
    });
}

export function registerConvert(program: Command): void {
  withModelFlags(program.command('convert').description('rewrite weights (.pth, .onnx, .model) as a .pth PyTorch loads'))
    .argument('<out>', 'the .pth to write')
    .option('-l, --layout <layout>', "'mmcls' or 'torchvision'", 'mmcls')
    .action(async (out: string, flags: ModelFlags & { layout: string }) => {
      if (!flags.weights) throw new UsageError('convert needs --weights <file>');
      if (flags.layout !== 'mmcls' && flags.layout !== 'torchvision') throw new UsageError(`--layout must be 'mmcls' or 'torchvision', got '${flags.layout}'`);
      const layout = flags.layout;
      await withModel(flags, async (model) => {
        await model.save(out, { layout });
        console.log(`wrote ${out} (${model.arch}, ${layout} layout, ${(fs.statSync(out).size / 2 ** 20).toFixed(1)} MiB)`);
      });
    });
}
