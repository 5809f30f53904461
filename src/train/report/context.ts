// What the report says about the run's setting: the options as fineTune
// resolved them (defaults filled in) and the machine it ran on. Both become
// name/value text rows; html.ts escapes them.
import * as os from 'node:os';
import type { ModelCore } from '../../core/model-core';
import { runtime } from '../../runtime';
import type { ResolvedFineTune } from '../options';

/** Arrays longer than this are summarised by their length. */
const MAX_LISTED = 16;
/** Longest option text shown; longer ones are cut with an ellipsis. */
const MAX_TEXT = 300;

function isDatasetLike(v: object): v is { items: unknown[] } {
  return Array.isArray((v as { items?: unknown }).items);
}

/** One option value as text: data sets by their size, functions and signals by their kind, the rest as JSON. */
export function describeValue(v: unknown): string {
  if (typeof v === 'function') return 'a function';
  if (typeof AbortSignal !== 'undefined' && v instanceof AbortSignal) return 'an AbortSignal';
  if (Array.isArray(v) && v.length > MAX_LISTED) return `a list of ${v.length} items`;
  if (v !== null && typeof v === 'object' && isDatasetLike(v)) return `a Dataset of ${v.items.length} images`;
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text;
}

/**
 * The resolved options as [name, text] rows, in their declaration order;
 * unset ones (undefined) are left out.
 *
 * @param o - fineTune's resolved options
 * @returns one row per option that has a value
 * @example
 * describeOptions(resolveFineTuneOptions({ train: 'data/', epochs: 2, batchSize: 8 }));
 * // [['train', 'data/'], ['val', …], …]
 */
export function describeOptions(o: ResolvedFineTune): Array<[string, string]> {
  return Object.entries(o)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => [k, describeValue(v)]);
}

/**
 * The machine and build as [name, text] rows: CPU model and count, memory,
 * OS, Node, LibTorch version, its threads, CUDA, oneDNN and the model's device.
 * Never throws: a fact that cannot be read is left out.
 *
 * @param model - the model being trained (for its device and architecture)
 * @returns the rows
 * @example
 * describeMachine(core); // [['CPU', 'AMD EPYC 7B13 × 2'], ['LibTorch', '2.1.2'], …]
 */
export function describeMachine(model: ModelCore): Array<[string, string]> {
  const cpus = os.cpus();
  const rows: Array<[string, string]> = [
    ['model', model.arch],
    ['device', model.device],
    ['CPU', cpus.length > 0 ? `${cpus[0].model.trim()} × ${cpus.length}` : 'unknown'],
    ['memory', `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`],
    ['OS', `${os.type()} ${os.release()} (${os.arch()})`],
    ['Node.js', process.version],
  ];
  try {
    const r = runtime();
    rows.push(
      ['LibTorch', r.torchVersion],
      ['LibTorch threads', `${r.threads} intra-op, ${r.interopThreads} inter-op`],
      ['CUDA', r.cuda ? `${r.cudaDevices} device(s)${r.cudnn ? ', cuDNN' : ''}` : 'no'],
      ['oneDNN', r.onednn.built ? `${r.onednn.version} ${r.onednn.isa}${r.onednn.enabled ? '' : ' (off)'}` : 'not built'],
    );
  } catch {
    // The addon is loaded (a model exists), so this is not expected; the page still shows the rest.
  }
  return rows;
}
