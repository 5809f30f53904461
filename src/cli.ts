#!/usr/bin/env node
// The vgg-native command line: thin commands over the public API.
import { Command, InvalidArgumentError } from 'commander';
import * as fs from 'node:fs';
import { ARCHITECTURES, isArchitecture, type Architecture } from './arch';
import { vgg, type Vgg } from './model';
import type { VggOptions } from './options';
import { runtime } from './runtime';

function intArg(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got '${v}'`);
    return n;
  };
}

function archArg(v: string): Architecture {
  if (!isArchitecture(v)) throw new InvalidArgumentError(`expected one of ${ARCHITECTURES.join(', ')}`);
  return v;
}

interface ModelFlags { arch?: Architecture; weights?: string; device?: string; threads?: number; numClasses?: number }

function withModelFlags(cmd: Command): Command {
  return cmd
    .option('-a, --arch <arch>', `architecture (${ARCHITECTURES.join(', ')}); inferred from --weights when omitted`, archArg)
    .option('-w, --weights <file>', 'weights: mmcls/torchvision .pth, .onnx or the ONNX zoo .model')
    .option('-d, --device <device>', "'auto', 'cpu', 'cuda' or 'cuda:N'", 'auto')
    .option('-t, --threads <n>', 'LibTorch intra-op threads (default: CPU count)', intArg('--threads'));
}

async function openModel(flags: ModelFlags, extra: VggOptions = {}): Promise<Vgg> {
  const options: VggOptions = { device: flags.device as VggOptions['device'], ...extra };
  if (flags.weights) options.weights = flags.weights;
  if (flags.threads) options.threads = flags.threads;
  if (flags.numClasses !== undefined) options.numClasses = flags.numClasses;
  return flags.arch ? vgg(flags.arch, options) : vgg(options);
}

function fmtCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(n);
}

export function buildCli(): Command {
  const program = new Command();
  program.name('vgg-native').description('VGG on LibTorch from Node.js: classify, extract features, fine-tune, convert weights')
    .showHelpAfterError();

  program.command('runtime').description('show the LibTorch build, CUDA and threads').action(() => {
    const r = runtime();
    console.log(JSON.stringify({ ...r, parallelInfo: undefined }, null, 2));
  });

  withModelFlags(program.command('summary').description('parameters and multiply-adds, layer by layer'))
    .option('-s, --size <n>', 'input height and width', intArg('--size'), 224)
    .option('--json', 'print JSON')
    .action(async (flags: ModelFlags & { size: number; json?: boolean }) => {
      const model = await openModel(flags.arch || flags.weights ? flags : { ...flags, arch: 'vgg16' });
      try {
        const s = model.summary(flags.size);
        if (flags.json) { console.log(JSON.stringify(s, null, 2)); return; }
        for (const l of s.layers) {
          console.log(`${l.name.padEnd(14)} ${l.type.padEnd(26)} ${JSON.stringify(l.outShape).padEnd(20)} params ${fmtCount(l.params).padStart(9)}  MACs ${fmtCount(l.macs).padStart(9)}`);
        }
        console.log(`${s.arch}: ${fmtCount(s.params)} parameters, ${fmtCount(s.macs)} multiply-adds at ${s.inputSize.join('x')}`);
      } finally {
        model.dispose();
      }
    });

  withModelFlags(program.command('convert').description('rewrite weights (.pth, .onnx, .model) as a .pth PyTorch loads'))
    .argument('<out>', 'the .pth to write')
    .option('-l, --layout <layout>', "'mmcls' or 'torchvision'", 'mmcls')
    .action(async (out: string, flags: ModelFlags & { layout: 'mmcls' | 'torchvision' }) => {
      if (!flags.weights) throw new InvalidArgumentError('convert needs --weights');
      const model = await openModel(flags);
      try {
        await model.save(out, { layout: flags.layout });
        console.log(`wrote ${out} (${model.arch}, ${flags.layout} layout, ${(fs.statSync(out).size / 2 ** 20).toFixed(1)} MiB)`);
      } finally {
        model.dispose();
      }
    });

  return program;
}

if (require.main === module) {
  buildCli().parseAsync(process.argv).catch((e: Error) => {
    console.error(`vgg-native: ${e.message}`);
    process.exit(1);
  });
}
