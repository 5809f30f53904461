// Writes a zip archive of stored (uncompressed) entries to an open file with
// positional writes, entry by entry: a tensor's bytes go from its own array
// to the file, nothing concatenates the archive in memory.
//
// Shaped after torch's writer (caffe2 PyTorchStreamWriter over miniz), so
// torch.load memory-maps what we write as it does its own files: entry data
// starts on a 64-byte boundary (padding in an 'FB' extra field), and a ZIP64
// end record and locator are always written; per-entry ZIP64 fields only
// where a size or offset needs them (or when forced, for tests).
import type { FileHandle } from 'node:fs/promises';
import * as zlib from 'node:zlib';
import { DOS_EPOCH, EXTRA_ZIP64, FLAG, METHOD, SIG, SIZE, U16_MAX, U32_MAX, VERSION } from './format';

export interface ZipWriterOptions {
  /** Entry data starts on a multiple of this many bytes (torch: 64). Default 1 (no padding field). */
  align?: number;
  /** Write ZIP64 fields for every entry even when not needed (tests). */
  forceZip64?: boolean;
}

interface CentralRecord {
  name: Buffer;
  crc: number;
  size: number;
  offset: number;
}

/** Id of torch's padding extra field ("FB"), as miniz writes it. */
const PAD_FIELD = 'FB';
/** Bytes of the CRC step between yields to the event loop. */
const CRC_SLICE = 8 << 20;

/** Appends stored entries to `fh` from offset 0, then the central directory on `finish()`. */
export class ZipWriter {
  private offset = 0;
  private readonly central: CentralRecord[] = [];
  private readonly align: number;
  private readonly forceZip64: boolean;

  constructor(
    private readonly fh: FileHandle,
    options: ZipWriterOptions = {},
  ) {
    this.align = options.align ?? 1;
    this.forceZip64 = options.forceZip64 ?? false;
  }

  /** Writes one stored entry: local header (padded to the alignment), then `data`. */
  async addStored(name: string, data: Uint8Array): Promise<void> {
    const nameBuf = Buffer.from(name, 'utf8');
    const crc = await crc32Yielding(data);
    const record: CentralRecord = { name: nameBuf, crc, size: data.length, offset: this.offset };
    const zip64 = this.forceZip64 || data.length >= U32_MAX;
    this.central.push(record);
    await this.write(localHeader(record, zip64, this.align));
    await this.write(data);
  }

  /** Writes the central directory and the end records; the archive is complete after this. */
  async finish(): Promise<void> {
    const cdStart = this.offset;
    for (const r of this.central) {
      await this.write(centralHeader(r, this.forceZip64 || r.size >= U32_MAX || r.offset >= U32_MAX));
    }
    await this.write(endRecords(this.central.length, this.offset - cdStart, cdStart, this.offset));
  }

  private async write(b: Uint8Array): Promise<void> {
    let done = 0;
    while (done < b.length) {
      const { bytesWritten } = await this.fh.write(b, done, b.length - done, this.offset + done);
      done += bytesWritten;
    }
    this.offset += b.length;
  }
}

/** CRC-32 in 8 MiB slices, yielding between them: a 400 MB tensor must not hold the event loop. */
async function crc32Yielding(data: Uint8Array): Promise<number> {
  let crc = 0;
  for (let i = 0; i < data.length; i += CRC_SLICE) {
    crc = zlib.crc32(data.subarray(i, i + CRC_SLICE), crc);
    if (i + CRC_SLICE < data.length) await new Promise((resolve) => setImmediate(resolve));
  }
  return crc >>> 0;
}

/** Local header + ZIP64 field (when asked) + padding field so the data lands on the alignment. */
function localHeader(r: CentralRecord, zip64: boolean, align: number): Buffer {
  const z64Len = zip64 ? 20 : 0;
  const padFixed = align > 1 ? 4 : 0;
  const base = r.offset + SIZE.LOCAL + r.name.length + z64Len + padFixed;
  const pad = align > 1 ? (align - (base % align)) % align : 0;
  const extraLen = z64Len + padFixed + pad;
  const h = Buffer.alloc(SIZE.LOCAL + r.name.length + extraLen);
  h.writeUInt32LE(SIG.LOCAL, 0);
  h.writeUInt16LE(zip64 ? VERSION.ZIP64 : VERSION.DEFAULT, 4);
  h.writeUInt16LE(FLAG.UTF8, 6);
  h.writeUInt16LE(METHOD.STORED, 8);
  h.writeUInt32LE(DOS_EPOCH, 10);
  h.writeUInt32LE(r.crc, 14);
  h.writeUInt32LE(zip64 ? U32_MAX : r.size, 18);
  h.writeUInt32LE(zip64 ? U32_MAX : r.size, 22);
  h.writeUInt16LE(r.name.length, 26);
  h.writeUInt16LE(extraLen, 28);
  r.name.copy(h, SIZE.LOCAL);
  let x = SIZE.LOCAL + r.name.length;
  if (zip64) {
    // Local ZIP64 field: uncompressed then compressed size.
    h.writeUInt16LE(EXTRA_ZIP64, x);
    h.writeUInt16LE(16, x + 2);
    h.writeBigUInt64LE(BigInt(r.size), x + 4);
    h.writeBigUInt64LE(BigInt(r.size), x + 12);
    x += 20;
  }
  if (padFixed) {
    h.write(PAD_FIELD, x, 'latin1');
    h.writeUInt16LE(pad, x + 2);
    h.fill('Z', x + 4);
  }
  return h;
}

function centralHeader(r: CentralRecord, zip64: boolean): Buffer {
  const ex = zip64 ? 28 : 0;
  const version = zip64 ? VERSION.ZIP64 : VERSION.DEFAULT;
  const c = Buffer.alloc(SIZE.CENTRAL + r.name.length + ex);
  c.writeUInt32LE(SIG.CENTRAL, 0);
  c.writeUInt16LE(version, 4); // made by
  c.writeUInt16LE(version, 6); // needed
  c.writeUInt16LE(FLAG.UTF8, 8);
  c.writeUInt16LE(METHOD.STORED, 10);
  c.writeUInt32LE(DOS_EPOCH, 12);
  c.writeUInt32LE(r.crc, 16);
  c.writeUInt32LE(zip64 ? U32_MAX : r.size, 20);
  c.writeUInt32LE(zip64 ? U32_MAX : r.size, 24);
  c.writeUInt16LE(r.name.length, 28);
  c.writeUInt16LE(ex, 30);
  c.writeUInt32LE(zip64 ? U32_MAX : r.offset, 42);
  r.name.copy(c, SIZE.CENTRAL);
  if (zip64) {
    // Central ZIP64 field: uncompressed size, compressed size, local header offset.
    const x = SIZE.CENTRAL + r.name.length;
    c.writeUInt16LE(EXTRA_ZIP64, x);
    c.writeUInt16LE(24, x + 2);
    c.writeBigUInt64LE(BigInt(r.size), x + 4);
    c.writeBigUInt64LE(BigInt(r.size), x + 12);
    c.writeBigUInt64LE(BigInt(r.offset), x + 20);
  }
  return c;
}

/** ZIP64 end record + locator (always, like torch), then the classic end record with saturated fields. */
function endRecords(count: number, cdSize: number, cdStart: number, end64At: number): Buffer {
  const e = Buffer.alloc(SIZE.END64 + SIZE.LOCATOR64 + SIZE.END);
  e.writeUInt32LE(SIG.END64, 0);
  e.writeBigUInt64LE(BigInt(SIZE.END64 - 12), 4); // size of the rest of the record
  e.writeUInt16LE(VERSION.ZIP64, 12);
  e.writeUInt16LE(VERSION.ZIP64, 14);
  e.writeBigUInt64LE(BigInt(count), 24);
  e.writeBigUInt64LE(BigInt(count), 32);
  e.writeBigUInt64LE(BigInt(cdSize), 40);
  e.writeBigUInt64LE(BigInt(cdStart), 48);
  const loc = SIZE.END64;
  e.writeUInt32LE(SIG.LOCATOR64, loc);
  e.writeBigUInt64LE(BigInt(end64At), loc + 8);
  e.writeUInt32LE(1, loc + 16); // total number of disks
  const end = loc + SIZE.LOCATOR64;
  e.writeUInt32LE(SIG.END, end);
  e.writeUInt16LE(Math.min(count, U16_MAX), end + 8);
  e.writeUInt16LE(Math.min(count, U16_MAX), end + 10);
  e.writeUInt32LE(Math.min(cdSize, U32_MAX), end + 12);
  e.writeUInt32LE(Math.min(cdStart, U32_MAX), end + 16);
  return e;
}
