// Extra registry entries from the JSON file VGG_NATIVE_REGISTRY names: an
// organisation's own fine-tuned weights, fetched, verified and cached by
// name like the published ones. Read when asked for (re-read when the file
// changes), checked strictly, refused whole if one entry is wrong.
import * as fs from 'node:fs';
import { isArchitecture, type Architecture } from '../arch';
import { setting } from '../settings';
import { DownloadError } from './errors';

/**
 * One entry of a VGG_NATIVE_REGISTRY file (a JSON array of these), as written
 * there. The file is checked strictly: an unknown field or a bad value refuses
 * the whole file with {@link DownloadError} 'REGISTRY'.
 */
export interface CustomEntry {
  /** The name vgg() and the CLI accept; must differ from the built-in keys and from 'imagenet' and the source names. */
  key: string;
  /** The architecture of the weights. */
  arch: Architecture;
  /** http(s) URL (VGG_NATIVE_MIRROR applies to it too). */
  url: string;
  /** Hex start of the file's sha256 (8 to 64 digits); recommended. */
  sha256?: string;
  /** Bytes. */
  size?: number;
  /** Shown by listWeights(); default 'custom'. */
  source?: string;
  /** Key naming (informational: the reader detects it); default 'onnx' for .onnx/.model URLs, else 'mmcls'. */
  layout?: 'mmcls' | 'torchvision' | 'onnx';
  /** Classes of the head (0: a backbone without classifier); default 1000. */
  numClasses?: number;
  /** Published accuracy, percent. */
  accuracy?: {
    /** Top-1 accuracy, percent. */
    top1: number;
    /** Top-5 accuracy, percent. */
    top5: number;
  };
}

/** Names an entry may not take: vgg()'s keywords. */
const RESERVED = ['imagenet', 'mmcls', 'torchvision', 'onnx-zoo', 'timm', 'all'];
const SHA256_PREFIX = /^[0-9a-f]{8,64}$/;
const LAYOUTS = ['mmcls', 'torchvision', 'onnx'];

let cached: { file: string; mtimeMs: number; entries: CustomEntry[] } | undefined;

function bad(file: string, where: string, why: string): DownloadError {
  return new DownloadError('REGISTRY', `VGG_NATIVE_REGISTRY file ${file}: ${where} ${why}`, { file });
}

function isHttpUrl(v: unknown): v is string {
  if (typeof v !== 'string') return false;
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

function isPositiveInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

function isAccuracy(v: unknown): v is { top1: number; top5: number } {
  const a = v as { top1?: unknown; top5?: unknown };
  return typeof v === 'object' && v !== null && typeof a.top1 === 'number' && typeof a.top5 === 'number';
}

/** One entry checked field by field; the first problem is the error. */
function checkEntry(file: string, v: unknown, i: number, taken: Set<string>): CustomEntry {
  const where = `entry ${i}`;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(file, where, 'is not an object');
  const e = v as Record<string, unknown>;
  const allowed = ['key', 'arch', 'url', 'sha256', 'size', 'source', 'layout', 'numClasses', 'accuracy'];
  const unknown = Object.keys(e).find((k) => !allowed.includes(k));
  if (unknown) throw bad(file, where, `has an unknown field '${unknown}' (allowed: ${allowed.join(', ')})`);
  if (typeof e.key !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(e.key))
    throw bad(file, where, 'needs a key of letters, digits, ".", "_" and "-"');
  if (RESERVED.includes(e.key) || taken.has(e.key)) throw bad(file, where, `key '${e.key}' is taken`);
  if (!isArchitecture(e.arch)) throw bad(file, `${where} (${e.key})`, `has arch ${JSON.stringify(e.arch)}, not a VGG architecture`);
  if (!isHttpUrl(e.url)) throw bad(file, `${where} (${e.key})`, 'needs an http(s) url');
  if (e.sha256 !== undefined && (typeof e.sha256 !== 'string' || !SHA256_PREFIX.test(e.sha256.toLowerCase()))) {
    throw bad(file, `${where} (${e.key})`, 'has a sha256 that is not 8 to 64 hex digits');
  }
  if (e.size !== undefined && !isPositiveInteger(e.size)) throw bad(file, `${where} (${e.key})`, 'has a size that is not a positive integer');
  if (e.source !== undefined && (typeof e.source !== 'string' || e.source === '')) throw bad(file, `${where} (${e.key})`, 'has an empty source');
  if (e.layout !== undefined && !LAYOUTS.includes(e.layout as string))
    throw bad(file, `${where} (${e.key})`, `has a layout other than ${LAYOUTS.join(', ')}`);
  if (e.numClasses !== undefined && !(e.numClasses === 0 || isPositiveInteger(e.numClasses))) {
    throw bad(file, `${where} (${e.key})`, 'has a numClasses that is not a non-negative integer (0: no classifier)');
  }
  if (e.accuracy !== undefined && !isAccuracy(e.accuracy)) throw bad(file, `${where} (${e.key})`, 'has an accuracy that is not { top1, top5 }');
  taken.add(e.key);
  return { ...(e as unknown as CustomEntry), ...(typeof e.sha256 === 'string' ? { sha256: e.sha256.toLowerCase() } : {}) };
}

function parse(file: string, builtInKeys: readonly string[]): CustomEntry[] {
  let data: unknown;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DownloadError('REGISTRY', `cannot read the VGG_NATIVE_REGISTRY file ${file}: ${(e as Error).message}`, { file, cause: e });
  }
  if (!Array.isArray(data)) throw bad(file, 'the top level', 'is not a JSON array of entries');
  const taken = new Set(builtInKeys);
  return data.map((v, i) => checkEntry(file, v, i, taken));
}

/**
 * The entries of the file VGG_NATIVE_REGISTRY names ([] when unset).
 * @param builtInKeys - keys an entry may not reuse
 * @throws DownloadError REGISTRY naming the file and the first bad entry
 */
export function customEntries(builtInKeys: readonly string[]): CustomEntry[] {
  const file = setting('registry');
  if (file === null) return [];
  let mtimeMs: number;
  try {
    mtimeMs = fs.statSync(file).mtimeMs;
  } catch (e) {
    throw new DownloadError('REGISTRY', `cannot read the VGG_NATIVE_REGISTRY file ${file}: ${(e as Error).message}`, { file, cause: e });
  }
  if (cached?.file !== file || cached.mtimeMs !== mtimeMs) cached = { file, mtimeMs, entries: parse(file, builtInKeys) };
  return cached.entries;
}
