// `weights`: the registry, what each entry is and whether it is cached.
import type { Command } from 'commander';
import { listWeights, type WeightsEntry } from '../hub';
import { fmtBytes, UsageError, withArchFlags, type ArchFlags } from './common';
import { printJson } from './json';

interface WeightsFlags extends ArchFlags {
  source?: string;
  json?: boolean;
}

/** Published size, or the float32 estimate ('~') when the publisher gives none. */
function sizeOf(e: WeightsEntry): string {
  return e.size !== undefined ? fmtBytes(e.size) : `~${fmtBytes(e.params * 4)}`;
}

function printTable(entries: WeightsEntry[]): void {
  const keyWidth = Math.max(...entries.map((e) => e.key.length), 3) + 2;
  console.log(
    `${'key'.padEnd(keyWidth)}${'arch'.padEnd(10)}${'source'.padEnd(13)}${'top-1'.padStart(7)}${'top-5'.padStart(8)}${'size'.padStart(12)}  cached`,
  );
  for (const e of entries) {
    const acc = (v: number | undefined, w: number): string => (v === undefined ? '-' : v.toFixed(2)).padStart(w);
    console.log(
      `${e.key.padEnd(keyWidth)}${e.arch.padEnd(10)}${e.source.padEnd(13)}${acc(e.accuracy?.top1, 7)}${acc(e.accuracy?.top5, 8)}` +
        `${sizeOf(e).padStart(12)}  ${e.cached ? 'yes' : 'no'}`,
    );
  }
}

export function registerWeights(program: Command): void {
  withArchFlags(
    program.command('weights').description('the published weights vgg-native fetches by name (--weights <key>), with ImageNet top-1/top-5 (%)'),
    'only this architecture',
  )
    .option('-s, --source <source>', "only this source ('mmcls', 'torchvision', 'onnx-zoo', 'timm', or a VGG_NATIVE_REGISTRY entry's)")
    .option('--json', 'print the entries as one JSON array')
    .action((flags: WeightsFlags) => {
      const sources = [...new Set(listWeights().map((e) => e.source))];
      if (flags.source !== undefined && !sources.includes(flags.source))
        throw new UsageError(`--source must be one of ${sources.join(', ')}, got '${flags.source}'`);
      const entries = listWeights({ ...(flags.arch ? { arch: flags.arch } : {}), ...(flags.source ? { source: flags.source } : {}) });
      if (flags.json) printJson(entries);
      else printTable(entries);
    });
}
