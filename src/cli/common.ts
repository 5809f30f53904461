// Shared by the CLI commands: the model flags (--arch/--model, --weights,
// --device, --threads), argument parsers, the global --quiet/--verbose state,
// and the UsageError that ends the process with status 2.
import { type Command, InvalidArgumentError } from 'commander';
import { ARCHITECTURES, isArchitecture, type Architecture } from '../arch';
import { vgg, type Vgg } from '../model';
import type { VggOptions } from '../options';
import { downloadBar } from './progress';
import { cliState } from './state';

/** A mistake in how the command was called: printed as `vgg-native: <message>`, exit status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** commander parser for an integer >= min. */
export function intArg(name: string, min = 1) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got '${v}'`);
    return n;
  };
}

export function archArg(v: string): Architecture {
  if (!isArchitecture(v)) throw new InvalidArgumentError(`expected one of ${ARCHITECTURES.join(', ')}`);
  return v;
}

export interface ArchFlags {
  arch?: Architecture;
  model?: Architecture;
}
export interface ModelFlags extends ArchFlags {
  weights?: string;
  ema?: boolean;
  device?: string;
  threads?: number;
}

/** What --weights accepts, for help texts. */
export const WEIGHTS_HELP =
  "a .pth/.safetensors/.onnx/.model file, 'imagenet', 'mmcls', 'torchvision', 'onnx-zoo', 'timm', a registry key (see `vgg-native weights`) or an http(s) URL";

/** -a/--arch and its synonym -m/--model (the flag torchvision's reference scripts and timm use). */
export function withArchFlags(cmd: Command, what = 'architecture'): Command {
  return cmd.option('-a, --arch <arch>', `${what} (${ARCHITECTURES.join(', ')})`, archArg).option('-m, --model <arch>', 'same as --arch', archArg);
}

/** --arch/--model, -w/--weights, --ema, -d/--device, -t/--threads. */
export function withModelFlags(cmd: Command): Command {
  return withArchFlags(cmd, 'architecture; inferred from --weights when omitted')
    .option('-w, --weights <weights>', WEIGHTS_HELP)
    .option('--ema', 'load the EMA weights a checkpoint holds beside the live ones (see `vgg-native info <weights>`)')
    .option('-d, --device <device>', "'auto', 'cpu', 'cuda' or 'cuda:N'", 'auto')
    .option('-t, --threads <n>', 'LibTorch intra-op threads (default: CPU count)', intArg('--threads'));
}

/**
 * Folds --model into --arch (run before every action, so commands read
 * flags.arch only). @throws UsageError when the two disagree
 */
export function settleArchFlags(cmd: Command): void {
  const o = cmd.opts() as ArchFlags;
  if (o.model === undefined) return;
  if (o.arch !== undefined && o.arch !== o.model) throw new UsageError(`--arch ${o.arch} and --model ${o.model} disagree; give one of them`);
  cmd.setOptionValue('arch', o.model);
}

/** Builds the model the flags describe (vgg16 with random weights when neither --arch nor --weights is given); named weights download with a progress bar. */
export async function openModel(flags: ModelFlags, extra: VggOptions = {}): Promise<Vgg> {
  const options: VggOptions = { device: flags.device as VggOptions['device'], ...extra };
  if (flags.threads) options.threads = flags.threads;
  const bar = downloadBar(!cliState.quiet);
  if (flags.weights) {
    options.weights = flags.weights;
    options.onDownloadProgress = bar.update;
  }
  if (flags.ema) options.ema = true;
  try {
    return await (flags.arch ? vgg(flags.arch, options) : vgg(options));
  } finally {
    bar.stop();
  }
}

/** Runs `work` with the model, disposing it afterwards. */
export async function withModel<T>(flags: ModelFlags, work: (model: Vgg) => Promise<T>, extra?: VggOptions): Promise<T> {
  const model = await openModel(flags, extra);
  try {
    return await work(model);
  } finally {
    model.dispose();
  }
}

/** Inference commands need trained weights; random ones are allowed only when --arch says so explicitly. */
export function requireModelSource(flags: ModelFlags, command: string): void {
  if (!flags.weights && !flags.arch) throw new UsageError(`${command} needs --weights (or --arch/--model for a randomly initialised model)`);
}

export function fmtCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(n);
}

/** Bytes for people: '527.8 MiB'. */
export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}
