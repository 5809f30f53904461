// Shared by the CLI commands: the model flags, argument parsers, and the
// UsageError that the entry point prints as one line.
import { Command, InvalidArgumentError } from 'commander';
import { ARCHITECTURES, isArchitecture, type Architecture } from '../arch';
import { vgg, type Vgg } from '../model';
import type { VggOptions } from '../options';

/** A mistake in how the command was called: printed as `vgg-native: <message>`, exit 1. */
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

export interface ModelFlags { arch?: Architecture; weights?: string; device?: string; threads?: number }

/** -a/--arch, -w/--weights, -d/--device, -t/--threads. */
export function withModelFlags(cmd: Command): Command {
  return cmd
    .option('-a, --arch <arch>', `architecture (${ARCHITECTURES.join(', ')}); inferred from --weights when omitted`, archArg)
    .option('-w, --weights <file>', 'weights: mmcls/torchvision .pth, .onnx or the ONNX zoo .model')
    .option('-d, --device <device>', "'auto', 'cpu', 'cuda' or 'cuda:N'", 'auto')
    .option('-t, --threads <n>', 'LibTorch intra-op threads (default: CPU count)', intArg('--threads'));
}

/** Builds the model the flags describe (vgg16 with random weights when neither --arch nor --weights is given). */
export async function openModel(flags: ModelFlags, extra: VggOptions = {}): Promise<Vgg> {
  const options: VggOptions = { device: flags.device as VggOptions['device'], ...extra };
  if (flags.weights) options.weights = flags.weights;
  if (flags.threads) options.threads = flags.threads;
  return flags.arch ? vgg(flags.arch, options) : vgg(options);
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
  if (!flags.weights && !flags.arch) throw new UsageError(`${command} needs --weights (or --arch for a randomly initialised model)`);
}

export function fmtCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(n);
}
