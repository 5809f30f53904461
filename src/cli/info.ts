// `info`: with no argument the runtime (LibTorch, CUDA, threads, CPU ISA,
// oneDNN, the gemv kernel, the weights cache, every setting's effective
// value); with weights, what the file
// holds (format, layout, architecture, parameters, labels, meta, keys).
// `runtime` stays as the JSON-only alias it always was.
import type { Command } from 'commander';
import { archName } from '../arch';
import type { TensorSource } from '../binding';
import { resolveWeightsFile, weightsCacheDir, type WeightsEntry } from '../hub';
import { runtime, type Runtime } from '../runtime';
import { SETTING_VARIABLES, type Settings } from '../settings';
import { readWeights, type LoadedWeights } from '../weights';
import { fmtBytes, fmtCount, withArchFlags, type ArchFlags } from './common';
import { printJson, toJson } from './json';
import { downloadBar } from './progress';
import { cliState } from './state';

/** Buffers of batch norm: state, not learnable parameters. */
const BUFFER = /\.(running_mean|running_var|num_batches_tracked)$/;
/** Labels and meta values shown in the human output before '...'. */
const SHOWN_LABELS = 5;
const SHOWN_VALUE_CHARS = 70;

type RuntimeReport = Omit<Runtime, 'parallelInfo'> & { weightsCache: string };

function runtimeReport(): RuntimeReport {
  const { parallelInfo: _omitted, ...r } = runtime();
  return { ...r, weightsCache: weightsCacheDir() };
}

function printRuntime(r: RuntimeReport): void {
  const devices = ['cpu', ...Array.from({ length: r.cudaDevices }, (_, i) => `cuda:${i}`)].join(', ');
  const rows: Array<[string, string]> = [
    ['LibTorch', r.torchVersion],
    ['Addon', `${r.addon.kind === 'prebuilt' ? 'prebuilt' : r.addon.kind === 'source' ? 'source build' : 'VGG_NATIVE_ADDON'}: ${r.addon.path}`],
    ['CUDA', r.cuda ? `yes, ${r.cudaDevices} device${r.cudaDevices === 1 ? '' : 's'}, cuDNN ${r.cudnn ? 'yes' : 'no'}` : 'no'],
    ['devices', devices],
    ['threads', `${r.threads} intra-op, ${r.interopThreads} inter-op`],
    ['CPU ISA', `${r.onednn.isa || 'unknown'}${r.onednn.bf16 ? ' (native bf16)' : ''}`],
    ['oneDNN', r.onednn.built ? `${r.onednn.version}, ${r.onednn.enabled ? 'on' : 'off (VGG_NATIVE_ONEDNN=0)'}` : 'not in this build'],
    ['gemv kernel', r.gemvKernel],
    ['distributed', r.distributed ? 'yes' : 'no'],
    [
      'host cache',
      `${fmtBytes(r.hostCache.cachedBytes)} of ${fmtBytes(r.hostCache.limitBytes)} (${r.hostCache.hits} hits, ${r.hostCache.misses} misses, ${r.hostCache.evictions} evicted)`,
    ],
    ['N-API', String(r.napiVersion)],
    ['weights cache', r.weightsCache],
  ];
  for (const [k, v] of rows) console.log(`${k.padEnd(14)}${v}`);
  // Every setting by its variable, so what to change is on the screen (README "Environment").
  console.log('\nsettings (environment variables, effective values)');
  const names = Object.entries(SETTING_VARIABLES) as Array<[keyof Settings, string]>;
  const width = Math.max(...names.map(([, name]) => name.length)) + 2;
  for (const [key, name] of names) {
    const v = r.settings[key];
    console.log(`  ${name.padEnd(width)}${v === null ? '(unset)' : String(v)}${key === 'hostCacheMb' ? ' MiB' : ''}`);
  }
  const t = r.settings.torchrun;
  console.log(
    `  ${'torchrun'.padEnd(width)}${t ? `RANK ${t.rank} of WORLD_SIZE ${t.worldSize} (LOCAL_RANK ${t.localRank}), MASTER ${t.masterAddr}:${t.masterPort}` : '(WORLD_SIZE unset or 1: one process)'}`,
  );
}

function numel(t: TensorSource): number {
  return t.shape.reduce((a, b) => a * b, 1);
}

function dtypeOf(t: TensorSource): string {
  return t.kind === 'file' ? t.dtype : t.data instanceof Float32Array ? 'float32' : 'int64';
}

/** What `info <weights>` reports. */
interface WeightsReport {
  weights: string;
  file: string;
  format: string;
  layout: string;
  arch: string;
  numClasses: number;
  parameters: number;
  tensors: number;
  labels: string[] | null;
  meta: Record<string, unknown> | null;
  warnings: string[];
  /** EMA weights beside the live ones: where they are (vgg({ ema: true }) loads them). */
  ema: string | null;
  registry?: Pick<WeightsEntry, 'key' | 'source' | 'url' | 'sha256' | 'accuracy' | 'input'>;
  keys?: Array<{ name: string; shape: number[]; dtype: string }>;
}

function weightsReport(weights: string, file: string, w: LoadedWeights, entry: WeightsEntry | undefined, keys: boolean): WeightsReport {
  const tensors = [...w.tensors];
  const report: WeightsReport = {
    weights,
    file,
    format: w.format,
    layout: w.layout,
    arch: archName(w.arch),
    numClasses: w.numClasses,
    parameters: tensors.filter(([name]) => !BUFFER.test(name)).reduce((n, [, t]) => n + numel(t), 0),
    tensors: tensors.length,
    labels: w.labels ?? null,
    meta: w.meta ?? null,
    warnings: w.warnings,
    ema: w.ema?.source ?? null,
  };
  if (entry)
    report.registry = { key: entry.key, source: entry.source, url: entry.url, sha256: entry.sha256, accuracy: entry.accuracy, input: entry.input };
  if (keys) report.keys = tensors.map(([name, t]) => ({ name, shape: t.shape, dtype: dtypeOf(t) }));
  return report;
}

function short(v: unknown): string {
  const text = typeof v === 'string' ? v.split('\n')[0] : toJson(v);
  return text.length > SHOWN_VALUE_CHARS ? `${text.slice(0, SHOWN_VALUE_CHARS - 3)}...` : text;
}

function printWeights(r: WeightsReport): void {
  const row = (k: string, v: string): void => console.log(`${k.padEnd(13)} ${v}`);
  row('file', r.file);
  row('format', r.format);
  row('layout', r.layout);
  row('arch', r.arch);
  const shown = r.labels?.slice(0, SHOWN_LABELS).join(', ');
  row(
    'classes',
    r.numClasses === 0
      ? '0 (no classifier)'
      : `${r.numClasses}${shown ? ` (${shown}${(r.labels?.length ?? 0) > SHOWN_LABELS ? ', ...' : ''})` : ', no labels in the file'}`,
  );
  row('parameters', `${fmtCount(r.parameters)} (${r.parameters.toLocaleString('en-US')}) in ${r.tensors} tensors`);
  if (r.ema) row('ema', `${r.ema} (live weights shown; vgg({ ema: true }) loads these)`);
  if (r.registry) {
    const acc = r.registry.accuracy ? `: ImageNet top-1 ${r.registry.accuracy.top1}%, top-5 ${r.registry.accuracy.top5}%` : '';
    row('registry', `${r.registry.key} (${r.registry.source})${acc}`);
  }
  for (const [k, v] of Object.entries(r.meta ?? {})) {
    if (k === 'CLASSES') continue; // shown as classes
    row(`meta.${k}`, short(v));
  }
  for (const w of r.warnings) row('warning', w);
  if (!r.keys) return;
  console.log('');
  const width = Math.max(...r.keys.map((k) => k.name.length)) + 2;
  for (const k of r.keys) console.log(`${k.name.padEnd(width)}${JSON.stringify(k.shape).padEnd(22)}${k.dtype}`);
}

interface InfoFlags extends ArchFlags {
  keys?: boolean;
  json?: boolean;
}

async function describeWeights(weights: string, flags: InfoFlags): Promise<WeightsReport> {
  const bar = downloadBar(!cliState.quiet);
  let found: { file: string; entry?: WeightsEntry };
  try {
    found = await resolveWeightsFile(weights, { ...(flags.arch ? { arch: flags.arch } : {}), onProgress: bar.update });
  } finally {
    bar.stop();
  }
  const w = await readWeights(found.file);
  return weightsReport(weights, found.file, w, found.entry, flags.keys === true);
}

export function registerInfo(program: Command): void {
  withArchFlags(
    program
      .command('info')
      .description('the runtime (LibTorch, CUDA, threads, CPU ISA), or with weights: format, layout, architecture, parameters, labels, meta')
      .argument('[weights]', `weights to describe: ${"a file, a registry key, 'imagenet' (with --model) or a URL"}`),
    "architecture that 'imagenet' or a source name stands for",
  )
    .option('--keys', 'list every tensor: canonical name, shape, dtype')
    .option('--json', 'print one JSON document')
    .action(async (weights: string | undefined, flags: InfoFlags) => {
      if (!weights) {
        const r = runtimeReport();
        if (flags.json) printJson(r);
        else printRuntime(r);
        return;
      }
      const r = await describeWeights(weights, flags);
      if (flags.json) printJson(r);
      else printWeights(r);
    });
}

export function registerRuntime(program: Command): void {
  program
    .command('runtime')
    .description('the runtime as JSON (same as `info --json`)')
    .option('--json', 'print JSON (always on; accepted for symmetry)')
    .action(() => printJson(runtimeReport()));
}
