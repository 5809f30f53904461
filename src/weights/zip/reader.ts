// Reads a zip archive through a ByteSource: the end records and the central
// directory once, then any entry on demand. Nothing reads the whole archive:
// torch's tensor entries are only located (native code preads them), and an
// entry read into memory (a pickle, an .onnx) is read or inflated alone.
//
// Hand-written rather than yauzl: every defect must surface as the caller's
// typed error naming the file and the record (yauzl reports untyped Errors
// through callbacks), and yauzl wants the whole archive in memory or a
// file descriptor it manages itself.
//
// The central directory is the truth: local headers may hold zero sizes and
// a data descriptor (bit 3) after the data, or names and extra fields that
// differ from the central ones; only their signature and lengths are read.
// Names are decoded as UTF-8 whatever bit 11 says: torch and Python write
// ASCII names without it, and only ASCII suffixes (.onnx, data.pkl) are matched.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { EXTRA_ZIP64, FLAG, METHOD, SIG, SIZE, U16_MAX, U32_MAX, type ZipFail } from './format';
import type { ByteSource } from './source';

/** One central directory record, with ZIP64 values already applied. */
export interface ZipEntry {
  readonly name: string;
  /** Compression method: 0 stored, 8 deflate (others are refused when read). */
  readonly method: number;
  /** General purpose flags (encryption, data descriptor, UTF-8). */
  readonly flags: number;
  readonly crc: number;
  readonly compressedSize: number;
  /** Uncompressed size in bytes. */
  readonly size: number;
  /** Offset of the entry's local header. */
  readonly localOffset: number;
}

/** Where the central directory lies, from the end records. */
interface Directory {
  count: number;
  size: number;
  offset: number;
  /** Offset of the first end record: the directory must stop before it. */
  end: number;
}

/** Largest central directory read into memory: millions of entries, far beyond any checkpoint. */
const MAX_DIRECTORY_BYTES = 256 * 1024 * 1024;
/** Compressed bytes read per step while inflating: memory stays flat whatever the entry's size. */
const INFLATE_READ = 4 << 20;
/** Bytes zlib hands back per chunk while inflating. */
const INFLATE_CHUNK = 256 << 10;
/**
 * Deflated entries may expand to at most this multiple of their compressed
 * size (plus INFLATE_SLACK_BYTES): a zip bomb declares a huge size for a few
 * compressed bytes, and the output buffer is allocated from the declared size.
 * Real entries stay far below it (float weights deflate to ~93%, label text to ~25%).
 */
export const MAX_INFLATE_RATIO = 32;
/** Expansion allowed on top of MAX_INFLATE_RATIO, for small highly compressible entries. */
export const INFLATE_SLACK_BYTES = 64 << 20;

/**
 * An open zip archive: its entries by name, and verified reads of any one.
 * Every problem is thrown as the error `fail` makes.
 */
export class ZipReader {
  private readonly offsets = new Map<ZipEntry, number>();

  private constructor(
    private readonly source: ByteSource,
    private readonly fail: ZipFail,
    /** Entries by name, in central directory order. */
    readonly entries: ReadonlyMap<string, ZipEntry>,
    /** Where the entries' data must end: the start of the central directory. */
    private readonly dataEnd: number,
  ) {}

  /**
   * Reads the end records and the central directory of `source`.
   * @throws the error `fail` makes, with code TRUNCATED (no end record, short
   * reads) or BAD_ZIP (damaged, overlapping or duplicated records).
   */
  static async open(source: ByteSource, fail: ZipFail): Promise<ZipReader> {
    const dir = await findDirectory(source, fail);
    const entries = await readDirectory(source, fail, dir);
    checkNoOverlap(entries, fail);
    return new ZipReader(source, fail, entries, dir.offset);
  }

  /**
   * Absolute offset of an entry's data, after its LOCAL header's own name and
   * extra field (torch pads the extra field to align tensor data).
   * @throws TRUNCATED when the data runs past the file, BAD_ZIP when there is
   * no local header or the data runs into the central directory.
   */
  async dataOffset(e: ZipEntry): Promise<number> {
    const known = this.offsets.get(e);
    if (known !== undefined) return known;
    const { size } = this.source;
    if (e.localOffset + SIZE.LOCAL > size) {
      throw this.fail('TRUNCATED', `Zip entry ${e.name} has its header at ${e.localOffset} but the file has ${size} bytes`);
    }
    const h = await readAt(this.source, this.fail, SIZE.LOCAL, e.localOffset);
    if (h.readUInt32LE(0) !== SIG.LOCAL) {
      throw this.fail('BAD_ZIP', `Zip entry ${e.name}: no local header at byte ${e.localOffset} (damaged central directory)`);
    }
    const start = e.localOffset + SIZE.LOCAL + h.readUInt16LE(26) + h.readUInt16LE(28);
    const end = start + e.compressedSize;
    if (end > size) throw this.fail('TRUNCATED', `Zip entry ${e.name} needs bytes ${start}..${end} but the file has ${size}`);
    if (end > this.dataEnd) {
      throw this.fail('BAD_ZIP', `Zip entry ${e.name} needs bytes ${start}..${end}, into the central directory at ${this.dataEnd}`);
    }
    this.offsets.set(e, start);
    return start;
  }

  /**
   * An entry's bytes, inflated when deflated, checked against the recorded
   * size and CRC-32. Only this entry is read; deflated data is streamed.
   * @param limit - most uncompressed bytes accepted
   * @throws LIMIT when the entry is larger than `limit` or would inflate past
   * MAX_INFLATE_RATIO; BAD_ZIP for an
   * encrypted entry, another compression method, wrong size or CRC;
   * TRUNCATED when the file ends first.
   */
  async readEntry(e: ZipEntry, limit: number): Promise<Buffer> {
    if (e.size > limit) throw this.fail('LIMIT', `Entry ${e.name} holds ${e.size} bytes (at most ${limit} read into memory)`);
    if (e.flags & FLAG.ENCRYPTED) throw this.fail('BAD_ZIP', `Entry ${e.name} is encrypted`);
    if (e.method !== METHOD.STORED && e.method !== METHOD.DEFLATE) {
      throw this.fail('BAD_ZIP', `Entry ${e.name} uses compression method ${e.method}; only stored (0) and deflate (8) are read`);
    }
    if (e.method === METHOD.DEFLATE && e.size > e.compressedSize * MAX_INFLATE_RATIO + INFLATE_SLACK_BYTES) {
      throw this.fail(
        'LIMIT',
        `Entry ${e.name} declares ${e.size} bytes from ${e.compressedSize} compressed (a zip bomb?); at most ${MAX_INFLATE_RATIO}x plus ${INFLATE_SLACK_BYTES} bytes is inflated`,
      );
    }
    const start = await this.dataOffset(e);
    const data = e.method === METHOD.STORED ? await this.readStored(e, start) : await this.inflate(e, start);
    if (zlib.crc32(data) >>> 0 !== e.crc) throw this.fail('BAD_ZIP', `Entry ${e.name} fails its CRC-32 check (the file is damaged)`);
    return data;
  }

  private async readStored(e: ZipEntry, start: number): Promise<Buffer> {
    if (e.compressedSize !== e.size) {
      throw this.fail('BAD_ZIP', `Entry ${e.name} should hold ${e.size} bytes but holds ${e.compressedSize}`);
    }
    // allocUnsafe: readInto fills every byte or throws.
    return readInto(this.source, this.fail, Buffer.allocUnsafe(e.size), start);
  }

  /** Streams the compressed bytes through zlib into one buffer of the recorded size, refusing any byte more. */
  private async inflate(e: ZipEntry, start: number): Promise<Buffer> {
    // allocUnsafe: every byte is written before `filled === e.size` lets it out.
    const out = Buffer.allocUnsafe(e.size);
    let filled = 0;
    let ours: Error | undefined;
    const collect = async (inflated: AsyncIterable<Buffer>): Promise<void> => {
      for await (const piece of inflated) {
        if (filled + piece.length > out.length) {
          ours = this.fail('BAD_ZIP', `Entry ${e.name} should hold ${e.size} bytes but holds more`);
          throw ours;
        }
        piece.copy(out, filled);
        filled += piece.length;
      }
    };
    try {
      await pipeline(Readable.from(this.compressedPieces(e, start)), zlib.createInflateRaw({ chunkSize: INFLATE_CHUNK }), collect);
    } catch (x) {
      if (x === ours || !isZlibError(x)) throw x;
      throw this.fail('BAD_ZIP', `Entry ${e.name} cannot be inflated: ${(x as Error).message}`);
    }
    if (filled !== e.size) throw this.fail('BAD_ZIP', `Entry ${e.name} should hold ${e.size} bytes but holds ${filled}`);
    return out;
  }

  private async *compressedPieces(e: ZipEntry, start: number): AsyncGenerator<Buffer> {
    for (let at = 0; at < e.compressedSize; at += INFLATE_READ) {
      const n = Math.min(INFLATE_READ, e.compressedSize - at);
      yield await readInto(this.source, this.fail, Buffer.allocUnsafe(n), start + at);
    }
  }
}

/** zlib's own failures (corrupt or short deflate data) carry Z_* codes. */
function isZlibError(x: unknown): boolean {
  const code = (x as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('Z_');
}

/** Fills `buf` from `position`, or throws TRUNCATED naming where the source ended. */
async function readInto(source: ByteSource, fail: ZipFail, buf: Buffer, position: number): Promise<Buffer> {
  const got = await source.read(buf, position);
  if (got < buf.length) {
    throw fail('TRUNCATED', `The file ends at byte ${position + got} but ${buf.length} bytes were expected from byte ${position}`);
  }
  return buf;
}

function readAt(source: ByteSource, fail: ZipFail, length: number, position: number): Promise<Buffer> {
  return readInto(source, fail, Buffer.alloc(length), position);
}

// ------------------------------------------------------------ end records

/** Finds the end record (and the ZIP64 one it points to) and checks where the directory lies. */
async function findDirectory(source: ByteSource, fail: ZipFail): Promise<Directory> {
  // The end record is the last 22 bytes plus a comment of at most 64 KiB; the ZIP64 locator precedes it.
  const tailLen = Math.min(source.size, SIZE.END + U16_MAX + SIZE.LOCATOR64);
  const tailStart = source.size - tailLen;
  const tail = await readAt(source, fail, tailLen, tailStart);
  const end = findEndRecord(tail);
  if (end < 0) throw fail('TRUNCATED', 'The zip archive has no end-of-central-directory record: the file is truncated or damaged');
  checkSingleDisk(tail, end, fail);
  const hasLocator = end >= SIZE.LOCATOR64 && tail.readUInt32LE(end - SIZE.LOCATOR64) === SIG.LOCATOR64;
  const dir: Directory = hasLocator
    ? await readZip64End(source, fail, tail, end, tailStart + end)
    : { count: tail.readUInt16LE(end + 10), size: tail.readUInt32LE(end + 12), offset: tail.readUInt32LE(end + 16), end: tailStart + end };
  checkDirectoryBounds(dir, fail);
  return dir;
}

/** The last end record whose comment reaches exactly to the end of the file; -1 when none. */
function findEndRecord(tail: Buffer): number {
  for (let i = tail.length - SIZE.END; i >= 0; i--) {
    if (tail.readUInt32LE(i) === SIG.END && i + SIZE.END + tail.readUInt16LE(i + 20) === tail.length) return i;
  }
  return -1;
}

/** Split archives are never written by torch or the ONNX zoo, and their offsets mean something else. */
function checkSingleDisk(tail: Buffer, end: number, fail: ZipFail): void {
  const disk = tail.readUInt16LE(end + 4);
  const dirDisk = tail.readUInt16LE(end + 6);
  const ok = (d: number) => d === 0 || d === U16_MAX;
  if (!ok(disk) || !ok(dirDisk)) throw fail('BAD_ZIP', `The zip archive spans several disks (disk ${disk}, directory on disk ${dirDisk})`);
}

/** The ZIP64 end record the locator points at: 64-bit count, size and offset of the directory. */
async function readZip64End(source: ByteSource, fail: ZipFail, tail: Buffer, end: number, endAbs: number): Promise<Directory> {
  const at = Number(tail.readBigUInt64LE(end - SIZE.LOCATOR64 + 8));
  if (at + SIZE.END64 > endAbs - SIZE.LOCATOR64) throw fail('BAD_ZIP', `ZIP64 end record offset ${at} is outside the file`);
  const z = await readAt(source, fail, SIZE.END64, at);
  if (z.readUInt32LE(0) !== SIG.END64) throw fail('BAD_ZIP', `No ZIP64 end record at byte ${at}`);
  return { count: Number(z.readBigUInt64LE(32)), size: Number(z.readBigUInt64LE(40)), offset: Number(z.readBigUInt64LE(48)), end: at };
}

function checkDirectoryBounds(dir: Directory, fail: ZipFail): void {
  if (dir.offset + dir.size > dir.end) {
    throw fail(
      'BAD_ZIP',
      `Central directory at ${dir.offset} with ${dir.size} bytes overlaps the end record at ${dir.end} (truncated or damaged zip)`,
    );
  }
  // Each record takes at least 46 bytes: a larger count is a lie that would make us loop.
  if (dir.count > dir.size / SIZE.CENTRAL || dir.size > MAX_DIRECTORY_BYTES) {
    throw fail('BAD_ZIP', `Central directory claims ${dir.count} entries in ${dir.size} bytes`);
  }
}

// ------------------------------------------------------- central directory

async function readDirectory(source: ByteSource, fail: ZipFail, dir: Directory): Promise<Map<string, ZipEntry>> {
  const cd = await readAt(source, fail, dir.size, dir.offset);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < dir.count; i++) {
    const { entry, next } = parseCentralRecord(cd, p, i, dir.offset, fail);
    checkInDataArea(entry, dir.offset, fail);
    // Two readers could pick different ones of a duplicated name: refuse the ambiguity.
    if (entries.has(entry.name)) throw fail('BAD_ZIP', `Zip entry ${entry.name} appears twice in the central directory`);
    // Names no archiver of ours writes: an extracting tool would place them outside its folder.
    if (/^[/\\]|^[A-Za-z]:|\\|(^|\/)\.\.(\/|$)|\0/.test(entry.name)) {
      throw fail('BAD_ZIP', `Zip entry ${JSON.stringify(entry.name)} has an absolute or parent-relative name`);
    }
    entries.set(entry.name, entry);
    p = next;
  }
  return entries;
}

/** The record at `p`; `next` is where the following one starts. */
function parseCentralRecord(cd: Buffer, p: number, i: number, cdOffset: number, fail: ZipFail): { entry: ZipEntry; next: number } {
  if (p + SIZE.CENTRAL > cd.length || cd.readUInt32LE(p) !== SIG.CENTRAL) {
    throw fail('BAD_ZIP', `Central directory entry ${i} at byte ${cdOffset + p} is damaged (no signature)`);
  }
  const nameLen = cd.readUInt16LE(p + 28);
  const extraLen = cd.readUInt16LE(p + 30);
  const commentLen = cd.readUInt16LE(p + 32);
  const next = p + SIZE.CENTRAL + nameLen + extraLen + commentLen;
  if (next > cd.length) throw fail('BAD_ZIP', `Central directory entry ${i} runs past the directory`);
  const nameAt = p + SIZE.CENTRAL;
  const name = cd.toString('utf8', nameAt, nameAt + nameLen);
  const wide = { size: cd.readUInt32LE(p + 24), compressedSize: cd.readUInt32LE(p + 20), localOffset: cd.readUInt32LE(p + 42) };
  applyZip64Extra(cd, nameAt + nameLen, extraLen, wide, name, fail);
  const entry: ZipEntry = { name, flags: cd.readUInt16LE(p + 8), method: cd.readUInt16LE(p + 10), crc: cd.readUInt32LE(p + 16), ...wide };
  return { entry, next };
}

/** Replaces the fields that read 0xFFFFFFFF by the ZIP64 extra field's 64-bit values, in the APPNOTE's order. */
function applyZip64Extra(
  cd: Buffer,
  at: number,
  length: number,
  f: { size: number; compressedSize: number; localOffset: number },
  name: string,
  fail: ZipFail,
): void {
  const end = at + length;
  for (let x = at; x + 4 <= end; ) {
    const id = cd.readUInt16LE(x);
    const len = cd.readUInt16LE(x + 2);
    const bodyEnd = x + 4 + len;
    if (bodyEnd > end) throw fail('BAD_ZIP', `Extra field of ${name} runs past its record`);
    if (id === EXTRA_ZIP64) {
      let q = x + 4;
      const take = (): number => {
        if (q + 8 > bodyEnd) throw fail('BAD_ZIP', `ZIP64 field of ${name} is too short`);
        const v = Number(cd.readBigUInt64LE(q));
        q += 8;
        return v;
      };
      if (f.size === U32_MAX) f.size = take();
      if (f.compressedSize === U32_MAX) f.compressedSize = take();
      if (f.localOffset === U32_MAX) f.localOffset = take();
    }
    x = bodyEnd;
  }
}

function checkInDataArea(e: ZipEntry, cdOffset: number, fail: ZipFail): void {
  if (e.localOffset + SIZE.LOCAL > cdOffset || e.localOffset + e.compressedSize > cdOffset) {
    throw fail('BAD_ZIP', `Zip entry ${e.name} claims ${e.compressedSize} bytes at ${e.localOffset}, beyond the data area (${cdOffset} bytes)`);
  }
}

/**
 * Entries must not share bytes: overlapping entries are how zip bombs
 * multiply one compressed stream. Each entry takes at least its fixed local
 * header and its compressed bytes, so the next one cannot start sooner.
 */
function checkNoOverlap(entries: Map<string, ZipEntry>, fail: ZipFail): void {
  const byOffset = [...entries.values()].sort((a, b) => a.localOffset - b.localOffset);
  for (let i = 1; i < byOffset.length; i++) {
    const a = byOffset[i - 1];
    const b = byOffset[i];
    if (b.localOffset < a.localOffset + SIZE.LOCAL + a.compressedSize) {
      throw fail('BAD_ZIP', `Zip entries ${a.name} and ${b.name} overlap (${b.name} starts at byte ${b.localOffset}, inside ${a.name})`);
    }
  }
}
