// Which image format a file is, from its leading bytes, before any decoder sees it.
// libvips picks a loader by content and would render SVG (which can read other
// files, as CVE-2023-38633 did), PDF or HEIC; only the raster formats listed in
// DECODED reach it. Signatures: each format's specification (PNG 5.2, JFIF/ITU
// T.81 SOI, RIFF/WebP container, GIF89a, TIFF 6.0 and BigTIFF, ISO/IEC 14496-12
// `ftyp` brands for AVIF/HEIF).
import { readHead } from '../fs/file-head';

/** The formats decoded, as sharp's `metadata().format` names them (AVIF is 'heif' with AV1 inside). */
export type DecodedFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'avif';

/** What the leading bytes say: a decoded format, or a known one that is refused, or nothing known. */
export type Sniffed = { decoded: true; format: DecodedFormat } | { decoded: false; format: string | undefined; hint: string };

/** Bytes read from a file for {@link sniff}: enough for an ISO-BMFF `ftyp` box with its brands and an XML prolog. */
export const SNIFF_BYTES = 512;

const CONVERT = 'convert it to JPEG or PNG first';

const ascii = (b: Uint8Array, from: number, to: number): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1', from, to);

const startsWith = (b: Uint8Array, sig: readonly number[]): boolean => b.length >= sig.length && sig.every((v, i) => b[i] === v);

/** AVIF and HEIC share ISO-BMFF; the `ftyp` brands tell them apart (AV1 vs HEVC inside). */
function isoMedia(b: Uint8Array): Sniffed | undefined {
  if (b.length < 12 || ascii(b, 4, 8) !== 'ftyp') return undefined;
  const size = Math.min(b.length, Math.max(16, Buffer.from(b.buffer, b.byteOffset, b.byteLength).readUInt32BE(0)));
  const brands = new Set<string>();
  for (let i = 8; i + 4 <= size; i += 4) if (i !== 12) brands.add(ascii(b, i, i + 4)); // 12..16 is minor_version
  if (brands.has('avif') || brands.has('avis')) return { decoded: true, format: 'avif' };
  if (['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1'].some((x) => brands.has(x))) {
    return {
      decoded: false,
      format: 'HEIC',
      hint: `HEIC/HEIF (HEVC-coded, as iPhones save) is not decoded; ${CONVERT} (e.g. \`heif-convert in.heic out.jpg\`)`,
    };
  }
  if (brands.has('jxl ')) return { decoded: false, format: 'JPEG XL', hint: `JPEG XL is not decoded; ${CONVERT}` };
  return { decoded: false, format: 'ISO media (MP4/QuickTime)', hint: 'a video or ISO-BMFF container is not an image' };
}

/** Text formats: SVG (and XML in general) may reference other files, so it is never handed to the decoder. */
function markup(b: Uint8Array): Sniffed | undefined {
  let text = ascii(b, 0, b.length);
  if (text.startsWith('\xef\xbb\xbf')) text = text.slice(3);
  text = text.trimStart();
  if (!text.startsWith('<')) return undefined;
  if (/<svg[\s>]/i.test(text) || /^<!DOCTYPE\s+svg/i.test(text)) {
    return {
      decoded: false,
      format: 'SVG',
      hint: `SVG is refused: it is a document that can load other files; rasterise it yourself (e.g. with sharp) and pass the pixels, or ${CONVERT}`,
    };
  }
  return { decoded: false, format: /^<\?xml/i.test(text) ? 'XML' : 'HTML/XML text', hint: 'text markup is not an image' };
}

const REFUSED: ReadonlyArray<{ sig: readonly number[]; format: string; hint: string }> = [
  { sig: [0x25, 0x50, 0x44, 0x46], format: 'PDF', hint: `PDF is a document; ${CONVERT}` },
  { sig: [0x42, 0x4d], format: 'BMP', hint: `BMP is not decoded; ${CONVERT}` },
  { sig: [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20], format: 'JPEG 2000', hint: `JPEG 2000 is not decoded; ${CONVERT}` },
  { sig: [0xff, 0x4f, 0xff, 0x51], format: 'JPEG 2000', hint: `JPEG 2000 is not decoded; ${CONVERT}` },
  { sig: [0xff, 0x0a], format: 'JPEG XL', hint: `JPEG XL is not decoded; ${CONVERT}` },
  { sig: [0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20], format: 'JPEG XL', hint: `JPEG XL is not decoded; ${CONVERT}` },
  { sig: [0x38, 0x42, 0x50, 0x53], format: 'PSD', hint: `Photoshop files are not decoded; ${CONVERT}` },
  { sig: [0x76, 0x2f, 0x31, 0x01], format: 'OpenEXR', hint: `OpenEXR is not decoded; ${CONVERT}` },
  { sig: [0x00, 0x00, 0x01, 0x00], format: 'ICO', hint: `ICO is not decoded; ${CONVERT}` },
  { sig: [0x1f, 0x8b], format: 'gzip', hint: 'a gzip archive (maybe SVGZ) is not an image' },
  { sig: [0x50, 0x4b, 0x03, 0x04], format: 'ZIP', hint: 'a ZIP archive is not an image' },
];

/**
 * The format the leading bytes declare. Only JPEG, PNG, WebP, GIF, TIFF and
 * AVIF come back `decoded: true`; everything else (named when known) is refused.
 */
export function sniff(bytes: Uint8Array): Sniffed {
  // Only the head: an encoded Buffer may be the whole file, and markup() reads its bytes as text.
  const b = bytes.subarray(0, SNIFF_BYTES);
  if (startsWith(b, [0xff, 0xd8, 0xff])) return { decoded: true, format: 'jpeg' };
  if (startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { decoded: true, format: 'png' };
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return { decoded: true, format: 'webp' };
  if (['GIF87a', 'GIF89a'].includes(ascii(b, 0, 6))) return { decoded: true, format: 'gif' };
  if (['II*\0', 'MM\0*', 'II+\0', 'MM\0+'].includes(ascii(b, 0, 4))) return { decoded: true, format: 'tiff' };
  const other = isoMedia(b) ?? markup(b) ?? REFUSED.find((r) => startsWith(b, r.sig));
  if (other) return 'decoded' in other ? other : { decoded: false, format: other.format, hint: other.hint };
  return { decoded: false, format: undefined, hint: 'not an image, or a format that is not decoded (JPEG, PNG, WebP, GIF, TIFF, AVIF are)' };
}

/** The first {@link SNIFF_BYTES} of a file (fewer for a shorter file); rejects as fs does (ENOENT, EISDIR, EACCES). */
export function readImageHead(file: string): Promise<Buffer> {
  return readHead(file, SNIFF_BYTES);
}
