// The package's settings: every environment variable vgg-native reads is read
// here, and nowhere else in src/ or native/. Each is parsed by one grammar per
// type and a bad value is a SettingsError ('BAD_SETTING') naming the variable,
// rather than a silent default. The native side reads no environment at all:
// src/binding.ts hands it nativeSettings() through configure() when the addon
// loads, and runtime() reports what native code actually runs with.
//
// When each is read: the native ones (VGG_NATIVE_ONEDNN, _TF32,
// _HOST_CACHE_MB, _WORKER_NICE, _GEMV, _CONV_ALGO) and VGG_NATIVE_ADDON once,
// at the first load of the addon; all others on every use, so a changed
// process.env applies at once (the hub's tests rely on that).
//
// The one exception: childEnvironment() hands the whole environment to a
// child process (src/cli/build.ts: cmake, the compiler and
// scripts/libtorch.js read their own variables there, at build time).
import * as path from 'node:path';
import { VggNativeError } from './errors';

/** An environment: variable names to values, as `process.env` holds them. */
export type Environment = Readonly<Record<string, string | undefined>>;

/**
 * An environment variable vgg-native reads holds a value its grammar does
 * not accept: `code` is always `'BAD_SETTING'`, `variable` names it and
 * `value` is what it held. Thrown where the setting is read: when the addon
 * loads (the native settings; then no addon is loaded), by `runtime()`, or
 * by the call that uses it (downloads, `fineTune`).
 *
 * @example
 * ```ts
 * import { runtime, SettingsError } from 'vgg-native';
 *
 * try {
 *   runtime();
 * } catch (e) {
 *   if (e instanceof SettingsError) console.error(`fix ${e.variable}: ${e.message}`);
 *   else throw e;
 * }
 * ```
 */
export class SettingsError extends VggNativeError {
  declare readonly code: 'BAD_SETTING';
  /** The variable, e.g. 'VGG_NATIVE_GEMV'. */
  readonly variable: string;
  /** Its value as the environment held it. */
  readonly value: string;

  /**
   * @param variable - the environment variable
   * @param expected - what its grammar accepts, e.g. "'auto', 'avx2' or 'off'"
   * @param value - what it held
   */
  constructor(variable: string, expected: string, value: string) {
    super('BAD_SETTING', `Expected ${expected} for environment variable ${variable} but received ${shown(value)}`);
    this.name = 'SettingsError';
    this.variable = variable;
    this.value = value;
  }
}

/** A value as a message shows it: bare when it is one plain token (as integers read), quoted otherwise. */
function shown(value: string): string {
  const v = value.length > 60 ? `${value.slice(0, 57)}...` : value;
  return /^[\w.:/@+-]+$/.test(v) ? v : JSON.stringify(v);
}

/** The one boolean grammar: these words (any case, trimmed) are true... */
const TRUE_WORDS = ['1', 'true', 'yes', 'on'];
/** ...these false; the empty string is false too. */
const FALSE_WORDS = ['0', 'false', 'no', 'off', ''];
const BOOLEAN_EXPECTED = "one of 1, true, yes, on (true) or 0, false, no, off, '' (false)";

/** What VGG_NATIVE_GEMV caps native/gemv.cc's kernel at. */
export type GemvSetting = 'auto' | 'avx2' | 'off';
/** What VGG_NATIVE_CONV_ALGO forces the oneDNN engine's convolutions to. */
export type ConvAlgoSetting = 'auto' | 'direct' | 'winograd';
/** Which collective backend data-parallel training uses for CUDA tensors. */
export type DistBackend = 'auto' | 'nccl' | 'gloo';

/**
 * Every setting, as the environment sets it. Native settings (marked so) are
 * read when the addon loads; the others on every use. Unset, and for
 * non-boolean settings also empty, means the default. Booleans take
 * 1/true/yes/on or 0/false/no/off/empty (any case). README "Environment"
 * lists the same table.
 */
export interface Settings {
  /** VGG_NATIVE_ADDON: a .node file to load instead of the source build or the prebuilt package; only it is tried. Default: null (search). Read at the first load. */
  addon: string | null;
  /** VGG_NATIVE_DEBUG: the CLI prints the stack (and causes) after an error's one line, as --verbose does. Default: false. */
  debug: boolean;
  /** VGG_NATIVE_HOME: the weights cache folder (absolute). Default: null, meaning $XDG_CACHE_HOME/vgg-native, else ~/.cache/vgg-native. */
  home: string | null;
  /** VGG_NATIVE_MIRROR: an http(s) URL whose origin (and path prefix) replaces every registry URL's. Default: null (the published URLs). */
  mirror: string | null;
  /** VGG_NATIVE_REGISTRY: a JSON file of extra registry entries ({@link CustomEntry}[]). Default: null (none). */
  registry: string | null;
  /** VGG_NATIVE_OFFLINE: never touch the network; cached files load, anything else fails with DownloadError 'OFFLINE'. Default: false. */
  offline: boolean;
  /**
   * VGG_NATIVE_ONEDNN (native): the oneDNN engine for CPU inference; false runs
   * LibTorch's own kernels (for comparison). Default: true. An absolute path
   * (the same variable names a oneDNN folder for `vgg-native build`) means the default.
   */
  onednn: boolean;
  /** VGG_NATIVE_TF32 (native): false turns TensorFloat-32 off for cuDNN and cuBLAS (full fp32 on Ampere and later); true keeps LibTorch's defaults. Default: true. */
  tf32: boolean;
  /** VGG_NATIVE_HOST_CACHE_MB (native): most memory the caching CPU allocator keeps for reuse, MiB, 0..1048576; 0 turns it off. Default: 2048. {@link hostCache} changes it later. */
  hostCacheMb: number;
  /** VGG_NATIVE_WORKER_NICE (native): niceness added to pool threads (Linux), 0..19; 0 leaves them at the JS thread's priority. Default: 10. */
  workerNice: number;
  /** VGG_NATIVE_GEMV (native): cap on the batch 1-16 fully connected kernel: 'auto' (the CPU's best), 'avx2', 'off' (LibTorch's linear; 0/false/no also mean off). Default: 'auto'. */
  gemv: GemvSetting;
  /** VGG_NATIVE_CONV_ALGO (native): the oneDNN engine's convolutions: 'auto' (timed per layer shape), 'direct' or 'winograd'. Default: 'auto'. */
  convAlgo: ConvAlgoSetting;
  /** VGG_NATIVE_DIST_BACKEND: default of fineTune's `distributed.backend`: 'auto' (NCCL for CUDA tensors when LibTorch has it, else Gloo), 'nccl', 'gloo'. Default: 'auto'. */
  distBackend: DistBackend;
}

/** The settings native code runs with: what configure() takes and runtime() reports back. */
export type NativeSettings = Pick<Settings, 'onednn' | 'tf32' | 'hostCacheMb' | 'workerNice' | 'gemv' | 'convAlgo'>;

/** How one setting is read: its variable and its parser (given the raw value, set or not). */
interface Variable<T> {
  name: string;
  read(raw: string | undefined, name: string): T;
}

function boolean(fallback: boolean, also?: (raw: string) => boolean | undefined): Variable<boolean>['read'] {
  return (raw, name) => {
    if (raw === undefined) return fallback;
    const word = raw.trim().toLowerCase();
    if (TRUE_WORDS.includes(word)) return true;
    if (FALSE_WORDS.includes(word)) return false;
    const other = also?.(raw);
    if (other !== undefined) return other;
    throw new SettingsError(name, BOOLEAN_EXPECTED, raw);
  };
}

function integer(fallback: number, min: number, max: number): Variable<number>['read'] {
  return (raw, name) => {
    if (raw === undefined || raw.trim() === '') return fallback;
    const n = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
    if (!(n >= min && n <= max)) throw new SettingsError(name, `an integer between ${min} and ${max}`, raw);
    return n;
  };
}

/** One of `values` (any case); `aliases` maps other words to them. */
function oneOf<T extends string>(fallback: T, values: readonly T[], aliases: Record<string, T> = {}): Variable<T>['read'] {
  return (raw, name) => {
    if (raw === undefined || raw.trim() === '') return fallback;
    const word = raw.trim().toLowerCase();
    if ((values as readonly string[]).includes(word)) return word as T;
    if (Object.hasOwn(aliases, word)) return aliases[word];
    const listed = values.map((v) => `'${v}'`);
    throw new SettingsError(name, `${listed.slice(0, -1).join(', ')} or ${listed.at(-1)}`, raw);
  };
}

function text(raw: string | undefined): string | null {
  return raw === undefined || raw === '' ? null : raw;
}

const OFF_WORDS = Object.fromEntries(FALSE_WORDS.filter(Boolean).map((w) => [w, 'off' as const]));
const ON_WORDS = Object.fromEntries(TRUE_WORDS.map((w) => [w, 'auto' as const]));

/** The variable behind each setting and how its value is read. */
const VARIABLES: { readonly [K in keyof Settings]: Variable<Settings[K]> } = {
  addon: { name: 'VGG_NATIVE_ADDON', read: text },
  debug: { name: 'VGG_NATIVE_DEBUG', read: boolean(false) },
  home: { name: 'VGG_NATIVE_HOME', read: (raw) => (text(raw) === null ? null : path.resolve(raw as string)) },
  mirror: { name: 'VGG_NATIVE_MIRROR', read: text },
  registry: { name: 'VGG_NATIVE_REGISTRY', read: text },
  offline: { name: 'VGG_NATIVE_OFFLINE', read: boolean(false) },
  // `vgg-native build --onednn` and scripts/libtorch.js read the same name as a folder.
  onednn: { name: 'VGG_NATIVE_ONEDNN', read: boolean(true, (raw) => (path.isAbsolute(raw) ? true : undefined)) },
  tf32: { name: 'VGG_NATIVE_TF32', read: boolean(true) },
  hostCacheMb: { name: 'VGG_NATIVE_HOST_CACHE_MB', read: integer(2048, 0, 1048576) },
  workerNice: { name: 'VGG_NATIVE_WORKER_NICE', read: integer(10, 0, 19) },
  gemv: { name: 'VGG_NATIVE_GEMV', read: oneOf<GemvSetting>('auto', ['auto', 'avx2', 'off'], { ...OFF_WORDS, ...ON_WORDS }) },
  convAlgo: { name: 'VGG_NATIVE_CONV_ALGO', read: oneOf<ConvAlgoSetting>('auto', ['auto', 'direct', 'winograd']) },
  distBackend: { name: 'VGG_NATIVE_DIST_BACKEND', read: oneOf<DistBackend>('auto', ['auto', 'nccl', 'gloo']) },
};

const NATIVE_KEYS = ['onednn', 'tf32', 'hostCacheMb', 'workerNice', 'gemv', 'convAlgo'] as const satisfies readonly (keyof NativeSettings)[];

/** The environment variable behind each setting, e.g. `SETTING_VARIABLES.gemv === 'VGG_NATIVE_GEMV'`. */
export const SETTING_VARIABLES: { readonly [K in keyof Settings]: string } = Object.freeze(
  Object.fromEntries(Object.entries(VARIABLES).map(([k, v]) => [k, v.name])) as { [K in keyof Settings]: string },
);

/**
 * One setting, read now from `env`.
 *
 * @param key - which setting (see {@link Settings})
 * @param env - Default: `process.env`.
 * @returns its value, or its default when unset
 * @throws {@link SettingsError} 'BAD_SETTING' when the variable holds a value its grammar refuses
 * @example
 * ```ts
 * setting('debug', { VGG_NATIVE_DEBUG: '0' }); // false
 * ```
 */
export function setting<K extends keyof Settings>(key: K, env: Environment = process.env): Settings[K] {
  const v = VARIABLES[key];
  return v.read(env[v.name], v.name);
}

/** Every setting, read now from `env` (Default: `process.env`). @throws {@link SettingsError} 'BAD_SETTING' at the first bad variable */
export function readSettings(env: Environment = process.env): Settings {
  return Object.fromEntries(Object.keys(VARIABLES).map((k) => [k, setting(k as keyof Settings, env)])) as unknown as Settings;
}

/** The settings configure() hands native code. @throws {@link SettingsError} 'BAD_SETTING' */
export function nativeSettings(env: Environment = process.env): NativeSettings {
  return Object.fromEntries(NATIVE_KEYS.map((k) => [k, setting(k, env)])) as unknown as NativeSettings;
}

/** The torchrun (`torch.distributed.launch`) coordinates of this process. */
export interface TorchrunSettings {
  /** WORLD_SIZE: number of processes, an integer of at least 2 (1 or unset: not distributed). */
  worldSize: number;
  /** RANK: this process's rank, an integer in [0, worldSize); required when WORLD_SIZE > 1. */
  rank: number;
  /** LOCAL_RANK: the rank on this machine, a non-negative integer (pick the GPU with it). Default: RANK. */
  localRank: number;
  /** MASTER_ADDR: host of rank 0's TCPStore. Default: '127.0.0.1'. */
  masterAddr: string;
  /** MASTER_PORT: port of rank 0's TCPStore, 1..65535. Default: 29500 (torchrun's). */
  masterPort: number;
}

/**
 * The torchrun environment (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR,
 * MASTER_PORT), read now; undefined when WORLD_SIZE is unset, empty or 1.
 *
 * @param env - Default: `process.env`.
 * @throws {@link SettingsError} 'BAD_SETTING' naming the variable: a non-integer, a value out of range, RANK missing when WORLD_SIZE > 1
 * @example
 * ```ts
 * torchrunSettings({ WORLD_SIZE: '2', RANK: '1' });
 * // { worldSize: 2, rank: 1, localRank: 1, masterAddr: '127.0.0.1', masterPort: 29500 }
 * ```
 */
export function torchrunSettings(env: Environment = process.env): TorchrunSettings | undefined {
  const worldSize = integer(0, 1, Number.MAX_SAFE_INTEGER)(env.WORLD_SIZE, 'WORLD_SIZE');
  if (worldSize <= 1) return undefined;
  const rank = integer(-1, 0, worldSize - 1)(env.RANK, 'RANK');
  if (rank < 0) throw new SettingsError('RANK', `an integer between 0 and ${worldSize - 1} (WORLD_SIZE is ${worldSize})`, env.RANK ?? '');
  return {
    worldSize,
    rank,
    localRank: integer(rank, 0, Number.MAX_SAFE_INTEGER)(env.LOCAL_RANK, 'LOCAL_RANK'),
    masterAddr: text(env.MASTER_ADDR) ?? '127.0.0.1',
    masterPort: integer(29500, 1, 65535)(env.MASTER_PORT, 'MASTER_PORT'),
  };
}

/** The proxy variables, as curl reads them. */
export type ProxyVariable = 'https_proxy' | 'http_proxy' | 'all_proxy' | 'no_proxy';

/**
 * A proxy variable: the lower-case name wins over the upper-case one, as in
 * curl; empty counts as unset. Free text (a URL or a NO_PROXY list, parsed
 * by src/hub/proxy.ts).
 *
 * @param name - lower case, e.g. 'https_proxy' (reads https_proxy, then HTTPS_PROXY)
 * @param env - Default: `process.env`.
 */
export function proxyVariable(name: ProxyVariable, env: Environment = process.env): string | undefined {
  return env[name] || env[name.toUpperCase()] || undefined;
}

/** XDG_CACHE_HOME when absolute (the XDG spec says a relative one is invalid and must be ignored), else undefined. */
export function xdgCacheHome(env: Environment = process.env): string | undefined {
  const v = env.XDG_CACHE_HOME;
  return v && path.isAbsolute(v) ? v : undefined;
}

/**
 * The environment for a child process: ours with `extra` on top. The one
 * place the whole environment leaves this file (src/cli/build.ts: cmake,
 * the compiler and scripts/libtorch.js read their own variables).
 */
export function childEnvironment(extra: Record<string, string> = {}): Record<string, string | undefined> {
  return { ...process.env, ...extra };
}
