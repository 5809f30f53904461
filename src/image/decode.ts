// Any supported input -> interleaved 8-bit sRGB pixels, upright, no alpha.
// Decoding runs in sharp/libvips on the libuv pool, so it does not block.
import sharp from 'sharp';
import type { Tensor } from '../tensor';
import { ImageInputError, type ImageInputErrorCode } from './errors';
import { invalidType, isPlainObject, outOfRange } from '../validate';
import type { RgbImage } from './normalize';
import { isPositiveInteger, type ResolvedDecodeOptions } from './options';
import { Gate } from '../concurrency';
import { DECODE_BUDGET_PIXELS, decodeSize, MAX_ROW_PIXELS, streams } from './limits';
import { readImageHead, sniff, type DecodedFormat } from './sniff';

/**
 * Raw interleaved 8-bit pixels, row-major HWC (e.g. canvas ImageData): 1 grey,
 * 2 grey+alpha, 3 RGB, 4 RGBA. Grey is expanded to RGB and alpha dropped (or
 * composited onto `background`), as for encoded images.
 */
export interface RawPixels {
  /** width x height x channels bytes, 0..255, row by row, channels interleaved. */
  data: Uint8Array | Uint8ClampedArray | Buffer;
  /** Width in pixels, a positive integer. */
  width: number;
  /** Height in pixels, a positive integer. */
  height: number;
  /** Values per pixel: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA. */
  channels: 1 | 2 | 3 | 4;
}

/**
 * What `preprocess` accepts: a file path; encoded bytes (JPEG, PNG, WebP, GIF
 * first frame, TIFF, AVIF; anything else, SVG and HEIC included, is refused by content); a sharp
 * instance (rendered as you configured it; its orientation is yours to set);
 * raw pixels; or a ready tensor [3,H,W] / [1,3,H,W], passed through.
 */
export type ImageInput = string | Buffer | Uint8Array | sharp.Sharp | RawPixels | Tensor;

export type ClassifiedInput =
  | { kind: 'path'; path: string }
  | { kind: 'encoded'; bytes: Buffer }
  | { kind: 'sharp'; image: sharp.Sharp }
  | { kind: 'raw'; raw: RawPixels }
  | { kind: 'tensor'; tensor: Tensor };

const INPUT_EXPECTED =
  'a file path, Buffer/Uint8Array of encoded image bytes, sharp instance, raw pixels {data, width, height, channels} or Tensor {data: Float32Array, shape}';

function isSharp(v: unknown): v is sharp.Sharp {
  return (
    v instanceof sharp ||
    (isPlainObjectLike(v) && typeof (v as { clone?: unknown }).clone === 'function' && typeof (v as { metadata?: unknown }).metadata === 'function')
  );
}

function isPlainObjectLike(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/** Sorts an input into its kind, or throws TypeError naming `parameter`. */
export function classifyInput(input: unknown, parameter: string): ClassifiedInput {
  if (typeof input === 'string') {
    if (input.length === 0) throw invalidType(parameter, INPUT_EXPECTED, input);
    return { kind: 'path', path: input };
  }
  if (Buffer.isBuffer(input)) return { kind: 'encoded', bytes: input };
  if (input instanceof Uint8Array) return { kind: 'encoded', bytes: Buffer.from(input.buffer, input.byteOffset, input.byteLength) };
  if (isSharp(input)) return { kind: 'sharp', image: input };
  if (isPlainObject(input)) {
    if (input.data instanceof Float32Array && Array.isArray(input.shape)) return { kind: 'tensor', tensor: input as unknown as Tensor };
    if ((input.data instanceof Uint8Array || input.data instanceof Uint8ClampedArray) && 'width' in input) {
      const { width, height, channels, data } = input as unknown as RawPixels;
      if (!isPositiveInteger(width)) throw invalidType(`${parameter}.width`, 'a positive integer', width);
      if (!isPositiveInteger(height)) throw invalidType(`${parameter}.height`, 'a positive integer', height);
      if (![1, 2, 3, 4].includes(channels)) throw invalidType(`${parameter}.channels`, 'one of 1, 2, 3, 4', channels);
      if (data.length !== width * height * channels) {
        throw outOfRange(`Expected ${parameter}.data to hold width*height*channels = ${width * height * channels} bytes but received ${data.length}`);
      }
      return { kind: 'raw', raw: { data, width, height, channels } };
    }
  }
  throw invalidType(parameter, INPUT_EXPECTED, input);
}

/** Checks a pass-through tensor and returns it as [1,3,H,W] (same data, no copy). */
export function checkTensorInput(t: Tensor, parameter: string): Tensor {
  const s = t.shape;
  const dims = s.length === 4 && s[0] === 1 ? s.slice(1) : s;
  if (dims.length !== 3 || dims[0] !== 3 || !dims.every(isPositiveInteger)) {
    throw invalidType(`${parameter}.shape`, '[3, H, W] or [1, 3, H, W]', s);
  }
  const n = 3 * dims[1] * dims[2];
  if (t.data.length !== n) {
    throw outOfRange(`Expected ${parameter}.data to hold ${n} elements for shape [${s.join(', ')}] but received ${t.data.length}`);
  }
  return { data: t.data, shape: [1, 3, dims[1], dims[2]] };
}

function sharpOptions(o: ResolvedDecodeOptions): sharp.SharpOptions {
  return {
    failOn: o.failOn,
    limitInputPixels: o.maxPixels === false ? false : o.maxPixels,
    ignoreIcc: !o.colourManage,
    pages: 1, // animated GIF/WebP, multi-page TIFF: the first frame only
    sequentialRead: true,
  };
}

/** Drop (default) or composite alpha, expand grey, 16-bit -> 8-bit, raw interleaved RGB. */
function toRgb8(s: sharp.Sharp, o: ResolvedDecodeOptions): sharp.Sharp {
  const opaque = o.background !== undefined ? s.flatten({ background: o.background }) : s.removeAlpha();
  return opaque.toColourspace('srgb').raw({ depth: 'uchar' });
}

/**
 * CMYK (print JPEGs) -> RGB by Pillow's formula, the reference for ImageNet
 * preprocessing (torchvision and mmcls open images with PIL's `convert('RGB')`):
 * R = (255 - K) - C * (255 - K) / 255, rounded as Pillow's MULDIV255
 * (libImaging/Convert.c, cmyk2rgb), no ICC profile. libvips would convert
 * through a CMYK ICC profile instead, 8-12 levels away from PIL on average.
 * sharp hands out the decoder's CMYK values (Adobe inversion already undone).
 */
async function cmykToRgb(pipeline: sharp.Sharp): Promise<RgbImage> {
  const { data, info } = await pipeline
    .pipelineColourspace('cmyk')
    .toColourspace('cmyk')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels < 4) throw new Error(`CMYK decoder produced ${info.channels} channels, expected 4`);
  const n = info.width * info.height;
  const out = new Uint8Array(n * 3);
  const muldiv255 = (a: number, b: number): number => {
    const t = a * b + 128;
    return ((t >> 8) + t) >> 8;
  };
  // In slices, yielding between them: a 24-megapixel print JPEG would otherwise hold the event loop ~0.1 s.
  const SLICE = 1 << 18;
  for (let start = 0; start < n; start += SLICE) {
    if (start > 0) await new Promise((resolve) => setImmediate(resolve));
    const end = Math.min(n, start + SLICE);
    for (let i = start, src = start * info.channels, dst = start * 3; i < end; i++, src += info.channels, dst += 3) {
      const nk = 255 - data[src + 3];
      out[dst] = nk - muldiv255(data[src], nk);
      out[dst + 1] = nk - muldiv255(data[src + 1], nk);
      out[dst + 2] = nk - muldiv255(data[src + 2], nk);
    }
  }
  return { data: out, width: info.width, height: info.height };
}

/** libvips' error text, one line per distinct message. */
function libvipsText(msg: string): string {
  const lines = [
    ...new Set(
      msg
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean),
    ),
  ];
  return lines.join('; ') || 'no message';
}

/** "file", "123456-byte PNG buffer", ... */
function describeSource(input: ClassifiedInput): string {
  if (input.kind === 'path') return 'file';
  if (input.kind !== 'encoded') return input.kind === 'sharp' ? 'sharp input' : 'raw pixels';
  const s = sniff(input.bytes);
  return `${input.bytes.length}-byte ${s.decoded ? `${FORMAT_NAMES[s.format]} ` : ''}buffer`;
}

const FORMAT_NAMES: Record<DecodedFormat, string> = { jpeg: 'JPEG', png: 'PNG', webp: 'WebP', gif: 'GIF', tiff: 'TIFF', avif: 'AVIF' };

function describeFailure(err: unknown, input: ClassifiedInput, o: ResolvedDecodeOptions): { code: ImageInputErrorCode; reason: string } {
  const msg = err instanceof Error ? err.message : String(err);
  if (/exceeds pixel limit/i.test(msg) && o.maxPixels !== false) {
    return { code: 'TOO_LARGE', reason: `${msg} (maxPixels = ${o.maxPixels}); raise options.maxPixels to accept it` };
  }
  if (/unsupported image format/i.test(msg))
    return { code: 'UNSUPPORTED_FORMAT', reason: `${msg} (not an image, or a format this sharp build cannot read)` };
  if (/input file is missing/i.test(msg)) return { code: 'NOT_FOUND', reason: msg };
  // Anything else from a file or bytes is the decoder giving up on the data;
  // a stable summary leads, libvips' own words follow as detail.
  if (input.kind === 'path' || input.kind === 'encoded') {
    return {
      code: 'CORRUPT',
      reason: `cannot decode ${describeSource(input)}: the image data is truncated or corrupt (libvips: ${libvipsText(msg)})`,
    };
  }
  return { code: 'DECODE_FAILED', reason: msg };
}

export type Encoded = Extract<ClassifiedInput, { kind: 'path' } | { kind: 'encoded' }>;

/** The file's leading bytes; a missing or unreadable file becomes its ImageInputError. */
async function head(input: Encoded): Promise<Uint8Array> {
  if (input.kind === 'encoded') return input.bytes;
  try {
    return await readImageHead(input.path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const code = e.code === 'ENOENT' ? 'NOT_FOUND' : 'DECODE_FAILED';
    const reason = e.code === 'ENOENT' ? 'input file is missing' : `cannot read the file (${e.code ?? e.message})`;
    throw new ImageInputError(reason, { path: input.path, cause: err, code });
  }
}

/**
 * A sharp pipeline over an encoded image, once its bytes and header have
 * passed: a decoded format by content (and as libvips reads it), at most
 * maxPixels, shrunk while decoding to DECODE_BUDGET_PIXELS when larger.
 */
export async function openEncoded(input: Encoded, o: ResolvedDecodeOptions): Promise<{ pipeline: sharp.Sharp; cmyk: boolean }> {
  const path = input.kind === 'path' ? input.path : undefined;
  const refuse = (reason: string, code: ImageInputErrorCode) => new ImageInputError(reason, { path, code });
  const sniffed = sniff(await head(input));
  if (!sniffed.decoded) throw refuse(`unsupported image format: ${sniffed.format ?? 'unknown'} (${sniffed.hint})`, 'UNSUPPORTED_FORMAT');
  const s = sharp(input.kind === 'path' ? input.path : input.bytes, sharpOptions(o));
  const meta = await s.metadata();
  // libvips chooses its loader by content too; it must agree with ours (AVIF is HEIF with AV1 inside).
  const asRead = meta.format === 'heif' && meta.compression === 'av1' ? 'avif' : meta.format === 'heif' ? 'HEIC' : meta.format;
  if (asRead !== sniffed.format) {
    throw refuse(`unsupported image format: the bytes begin as ${FORMAT_NAMES[sniffed.format]} but decode as ${asRead}`, 'UNSUPPORTED_FORMAT');
  }
  const { width, height } = meta.autoOrient ?? { width: meta.width, height: meta.height };
  if (o.maxPixels !== false && width * height > o.maxPixels) {
    throw refuse(
      `${width}x${height} = ${width * height} pixels exceeds pixel limit (maxPixels = ${o.maxPixels}); raise options.maxPixels to accept it`,
      'TOO_LARGE',
    );
  }
  let pipeline = s.rotate(); // EXIF orientation
  const size = decodeSize(width, height);
  const shrink = size.width !== width || size.height !== height;
  if (shrink && !streams(sniffed.format, meta.isProgressive === true)) {
    const kind = `${meta.isProgressive ? (sniffed.format === 'png' ? 'interlaced ' : 'progressive ') : ''}${FORMAT_NAMES[sniffed.format]}`;
    throw refuse(
      `${width}x${height} = ${width * height} pixels: a ${kind} decoder holds the whole frame, so it is refused over ${DECODE_BUDGET_PIXELS} pixels (baseline JPEG and non-interlaced PNG of up to maxPixels are decoded in strips)`,
      'TOO_LARGE',
    );
  }
  if (meta.width > MAX_ROW_PIXELS) {
    throw refuse(`${width}x${height}: rows of ${meta.width} pixels are wider than ${MAX_ROW_PIXELS}, the widest this package decodes`, 'TOO_LARGE');
  }
  // Larger than the budget: libvips streams the decode through the shrink, never holding the whole image.
  if (size.width !== width || size.height !== height) pipeline = pipeline.resize(size.width, size.height, { fit: 'fill', kernel: 'linear' });
  return { pipeline, cmyk: meta.space === 'cmyk' };
}

async function decodeOnce(input: Exclude<ClassifiedInput, { kind: 'tensor' }>, o: ResolvedDecodeOptions): Promise<RgbImage> {
  let pipeline: sharp.Sharp;
  switch (input.kind) {
    case 'path':
    case 'encoded': {
      const opened = await openEncoded(input, o);
      if (opened.cmyk) return await cmykToRgb(opened.pipeline);
      pipeline = opened.pipeline;
      break;
    }
    case 'sharp':
      pipeline = input.image.clone();
      break;
    case 'raw': {
      const { data, width, height, channels } = input.raw;
      pipeline = sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels }, limitInputPixels: false });
      break;
    }
  }
  const { data, info } = await toRgb8(pipeline, o).toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoder produced ${info.channels} channels, expected 3`);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

/** SOI then EOI: a JPEG with no frame, which libvips' jpegload fails on. */
const EMPTY_JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xd9]);

/**
 * Empties libvips' error buffer, which keeps text from earlier failures until
 * someone reads it: sharp reads and clears it when an operation fails, so
 * one that is bound to fail does it.
 */
async function clearLibvipsErrors(): Promise<void> {
  await sharp(EMPTY_JPEG)
    .raw()
    .toBuffer()
    .catch(() => undefined);
}

/** Decodes run side by side; a failed one is decoded again alone (see decodeRgb). */
const decodes = new Gate();

/**
 * Decodes to 8-bit RGB. Failures become ImageInputError (with the path when
 * known). Encoded inputs are refused by content before any decoder runs
 * unless they are JPEG, PNG, WebP, GIF, TIFF or AVIF (see sniff.ts), and by
 * their header when over `maxPixels`; larger than DECODE_BUDGET_PIXELS, they
 * are shrunk while decoding.
 */
export async function decodeRgb(input: Exclude<ClassifiedInput, { kind: 'tensor' }>, o: ResolvedDecodeOptions): Promise<RgbImage> {
  const path = input.kind === 'path' ? input.path : undefined;
  if (input.kind === 'encoded' && input.bytes.length === 0) throw new ImageInputError('empty buffer (0 bytes)', { code: 'EMPTY' });
  if (input.kind === 'raw' && input.raw.channels === 3) {
    const { data, width, height } = input.raw;
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height };
  }
  try {
    return await decodes.shared(() => decodeOnce(input, o));
  } catch (err) {
    if (err instanceof ImageInputError) throw err; // refused before decoding
  }
  // libvips keeps one error buffer for every thread, so a failing decode's
  // message can carry another decode's words (a HEIC's error once quoted a
  // JPEG's "bad seek"). Decoded again with nothing beside it, the message is its own.
  try {
    return await decodes.exclusive(async () => {
      await clearLibvipsErrors();
      return decodeOnce(input, o);
    });
  } catch (err) {
    if (err instanceof ImageInputError) throw err;
    const { code, reason } = describeFailure(err, input, o);
    throw new ImageInputError(reason, { path, cause: err, code });
  }
}
