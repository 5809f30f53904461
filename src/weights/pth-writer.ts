// Writes torch.save's zip format so `torch.load(path, weights_only=True)`
// reads it: pickle protocol 2 in `<root>/data.pkl`, one stored (uncompressed)
// entry per tensor under `<root>/data/<key>`, 64-byte aligned like torch's
// writer (padding in an 'FB' extra field), `<root>/version` = 3 and
// `<root>/byteorder` = little. Tensor bytes are streamed from their own
// arrays with positional writes; nothing concatenates all tensors.
//
// Only opcodes torch 1.13's weights_only unpickler executes are emitted for
// containers, ints and strings; non-integer numbers use BINFLOAT, which torch
// >= 2.0's weights_only loader accepts but 1.13's does not (plain pickle.load
// and torch.load without weights_only read it everywhere).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import * as zlib from 'node:zlib';
import { CheckpointError } from './errors';

/** A tensor to write: row-major data of `shape`. */
export class TensorValue {
  constructor(
    readonly dtype: 'float32' | 'int64',
    readonly shape: number[],
    readonly data: Float32Array | BigInt64Array,
  ) {}
}

/** Anything with dtype/shape/data like native NamedTensor counts as a tensor. */
export interface TensorLike {
  dtype: 'float32' | 'int64';
  shape: number[];
  data: Float32Array | BigInt64Array;
}

export interface WritePthOptions {
  /** Folder name inside the zip (default: the file stem, or 'archive'). */
  rootName?: string;
  /** Write ZIP64 records for every entry even when not needed (tests). */
  forceZip64?: boolean;
}

function isTensorLike(v: unknown): v is TensorLike {
  return v instanceof TensorValue || (v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Map) &&
    ((v as TensorLike).data instanceof Float32Array || (v as TensorLike).data instanceof BigInt64Array) &&
    Array.isArray((v as TensorLike).shape));
}

// ------------------------------------------------------------------ pickling

class PickleWriter {
  private chunks: Buffer[] = [];
  readonly tensors: TensorLike[] = [];
  private depth = 0;

  constructor(private readonly file: string) {}

  private op(...bytes: number[]): void { this.chunks.push(Buffer.from(bytes)); }
  private raw(b: Buffer): void { this.chunks.push(b); }
  private str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    const h = Buffer.alloc(5); h[0] = 0x58; h.writeUInt32LE(b.length, 1); // BINUNICODE
    this.raw(h); this.raw(b);
  }
  private global(module: string, name: string): void {
    this.op(0x63); this.raw(Buffer.from(`${module}\n${name}\n`, 'utf8'));
  }
  private int(v: number | bigint): void {
    if (typeof v === 'number' && v >= 0 && v < 256) return this.op(0x4b, v);                  // BININT1
    if (typeof v === 'number' && v >= 0 && v < 65536) return this.op(0x4d, v & 0xff, v >> 8); // BININT2
    if (typeof v === 'number' && v >= -(2 ** 31) && v < 2 ** 31) {
      const b = Buffer.alloc(5); b[0] = 0x4a; b.writeInt32LE(v, 1); return this.raw(b);       // BININT
    }
    // LONG1: little-endian two's complement, minimal length.
    let x = BigInt(v);
    const bytes: number[] = [];
    for (;;) {
      const byte = Number(x & 0xffn);
      bytes.push(byte);
      x >>= 8n;
      if ((x === 0n && !(byte & 0x80)) || (x === -1n && byte & 0x80)) break;
    }
    this.op(0x8a, bytes.length, ...bytes);
  }
  private tuple(items: Array<() => void>): void {
    if (items.length === 0) return this.op(0x29);
    this.op(0x28); items.forEach((f) => f()); this.op(0x74);
  }

  value(v: unknown, where: string): void {
    if (++this.depth > 100) throw new CheckpointError('BAD_VALUE', `Cannot write ${this.file}: ${where} is nested deeper than 100 levels`, this.file);
    try { this.dispatch(v, where); } finally { this.depth--; }
  }

  private dispatch(v: unknown, where: string): void {
    if (v === null || v === undefined) return this.op(0x4e);
    if (v === true) return this.op(0x88);
    if (v === false) return this.op(0x89);
    if (typeof v === 'bigint') return this.int(v);
    if (typeof v === 'number') {
      if (Number.isSafeInteger(v)) return this.int(v);
      const b = Buffer.alloc(9); b[0] = 0x47; b.writeDoubleBE(v, 1); return this.raw(b); // BINFLOAT
    }
    if (typeof v === 'string') return this.str(v);
    if (isTensorLike(v)) return this.tensor(v, where);
    if (v instanceof Map) {
      // OrderedDict, as torch pickles state_dicts: GLOBAL, (), REDUCE, then items.
      this.global('collections', 'OrderedDict'); this.op(0x29, 0x52);
      return this.items([...v.entries()], where);
    }
    if (Array.isArray(v)) {
      this.op(0x5d);
      if (v.length) { this.op(0x28); v.forEach((x, i) => this.value(x, `${where}[${i}]`)); this.op(0x65); }
      return;
    }
    if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype || (typeof v === 'object' && Object.getPrototypeOf(v) === null)) {
      this.op(0x7d);
      return this.items(Object.entries(v as object), where);
    }
    throw new CheckpointError('BAD_VALUE',
      `Cannot write ${this.file}: expected tensors, Maps, arrays, plain objects, strings, numbers, booleans or null at ${where} but received ${Object.prototype.toString.call(v)}`,
      this.file);
  }

  private items(entries: Array<[unknown, unknown]>, where: string): void {
    if (!entries.length) return;
    this.op(0x28);
    for (const [k, x] of entries) {
      if (typeof k !== 'string' && typeof k !== 'number') {
        throw new CheckpointError('BAD_VALUE', `Cannot write ${this.file}: dict keys must be strings or numbers at ${where}`, this.file);
      }
      this.value(k, where);
      this.value(x, `${where}.${String(k)}`);
    }
    this.op(0x75); // SETITEMS
  }

  private tensor(t: TensorLike, where: string): void {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || numel !== t.data.length) {
      throw new CheckpointError('BAD_VALUE',
        `Cannot write ${this.file}: tensor at ${where} has shape [${t.shape.join(', ')}] (${numel} elements) but ${t.data.length} values`, this.file);
    }
    const expectedArray = t.dtype === 'float32' ? Float32Array : BigInt64Array;
    if (!(t.data instanceof expectedArray)) {
      throw new CheckpointError('BAD_VALUE', `Cannot write ${this.file}: tensor at ${where} is ${t.dtype} but its data is a ${t.data.constructor.name}`, this.file);
    }
    const key = String(this.tensors.length);
    this.tensors.push(t);
    const stride: number[] = new Array(t.shape.length);
    let s = 1;
    for (let d = t.shape.length - 1; d >= 0; d--) { stride[d] = s; s *= t.shape[d]; }
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.tuple([
      () => {
        this.tuple([
          () => this.str('storage'),
          () => this.global('torch', t.dtype === 'float32' ? 'FloatStorage' : 'LongStorage'),
          () => this.str(key),
          () => this.str('cpu'),
          () => this.int(numel),
        ]);
        this.op(0x51); // BINPERSID
      },
      () => this.int(0),
      () => this.tuple(t.shape.map((d) => () => this.int(d))),
      () => this.tuple(stride.map((d) => () => this.int(d))),
      () => this.op(0x89),
      () => { this.global('collections', 'OrderedDict'); this.op(0x29, 0x52); },
    ]);
    this.op(0x52); // REDUCE
  }

  finish(): Buffer {
    return Buffer.concat([Buffer.from([0x80, 0x02]), ...this.chunks, Buffer.from([0x2e])]);
  }
}

/** Pickles `obj` (protocol 2) and collects its tensors in storage-key order. */
export function pickleCheckpoint(obj: unknown, file = 'checkpoint'): { pickle: Buffer; tensors: TensorLike[] } {
  const w = new PickleWriter(file);
  w.value(obj, 'the checkpoint');
  return { pickle: w.finish(), tensors: w.tensors };
}

// ----------------------------------------------------------------- zip file

/** CRC-32 in 8 MiB slices, yielding between them: a 400 MB tensor must not hold the event loop. */
async function crc32Yielding(data: Uint8Array): Promise<number> {
  const CHUNK = 8 << 20;
  let crc = 0;
  for (let i = 0; i < data.length; i += CHUNK) {
    crc = zlib.crc32(data.subarray(i, i + CHUNK), crc);
    if (i + CHUNK < data.length) await new Promise((resolve) => setImmediate(resolve));
  }
  return crc >>> 0;
}

interface CentralRecord { name: Buffer; crc: number; size: number; offset: number }

const ALIGN = 64;
const U32_MAX = 0xffffffff;

/**
 * Writes `obj` (Maps/arrays/plain objects/strings/numbers/booleans/null and
 * tensors) as a zip-format .pth. Atomic: a temp file next to `file` is
 * renamed over it only when complete, and removed on failure.
 */
export async function writePth(file: string, obj: unknown, options: WritePthOptions = {}): Promise<void> {
  const { pickle, tensors } = pickleCheckpoint(obj, file);
  const stem = path.basename(file).replace(/\.[^.]*$/, '');
  const root = options.rootName ?? (/^[A-Za-z0-9_.-]+$/.test(stem) ? stem : 'archive');
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
  const fh = await fs.promises.open(tmp, 'wx');
  let ok = false;
  try {
    let offset = 0;
    const central: CentralRecord[] = [];
    const write = async (b: Uint8Array): Promise<void> => {
      let done = 0;
      while (done < b.length) {
        const { bytesWritten } = await fh.write(b, done, b.length - done, offset + done);
        done += bytesWritten;
      }
      offset += b.length;
    };
    const entry = async (name: string, data: Uint8Array): Promise<void> => {
      const nameBuf = Buffer.from(`${root}/${name}`, 'utf8');
      const crc = await crc32Yielding(data);
      const zip64 = options.forceZip64 || data.length >= U32_MAX;
      const z64Len = zip64 ? 20 : 0;
      // Pad the 'FB' extra field so the data starts on a 64-byte boundary (as torch does).
      const base = offset + 30 + nameBuf.length + z64Len + 4;
      const pad = (ALIGN - (base % ALIGN)) % ALIGN;
      const h = Buffer.alloc(30 + nameBuf.length + z64Len + 4 + pad);
      h.writeUInt32LE(0x04034b50, 0);
      h.writeUInt16LE(zip64 ? 45 : 20, 4);       // version needed
      h.writeUInt16LE(0x0800, 6);                // UTF-8 names
      h.writeUInt16LE(0, 8);                     // stored
      h.writeUInt32LE(0x00210000, 10);           // 1980-01-01 00:00 (deterministic output)
      h.writeUInt32LE(crc, 14);
      h.writeUInt32LE(zip64 ? U32_MAX : data.length, 18);
      h.writeUInt32LE(zip64 ? U32_MAX : data.length, 22);
      h.writeUInt16LE(nameBuf.length, 26);
      h.writeUInt16LE(z64Len + 4 + pad, 28);
      nameBuf.copy(h, 30);
      let x = 30 + nameBuf.length;
      if (zip64) {
        h.writeUInt16LE(0x0001, x); h.writeUInt16LE(16, x + 2);
        h.writeBigUInt64LE(BigInt(data.length), x + 4); h.writeBigUInt64LE(BigInt(data.length), x + 12);
        x += 20;
      }
      h.write('FB', x, 'latin1'); h.writeUInt16LE(pad, x + 2); h.fill('Z', x + 4);
      central.push({ name: nameBuf, crc, size: data.length, offset });
      await write(h);
      await write(data);
    };

    await entry('data.pkl', pickle);
    await entry('byteorder', Buffer.from('little'));
    for (let i = 0; i < tensors.length; i++) {
      const d = tensors[i].data;
      await entry(`data/${i}`, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    }
    await entry('version', Buffer.from('3\n'));

    // Central directory, then ZIP64 end record + locator (always, like torch), then the classic end record.
    const cdStart = offset;
    for (const r of central) {
      const zip64 = options.forceZip64 || r.size >= U32_MAX || r.offset >= U32_MAX;
      const ex = zip64 ? 28 : 0;
      const c = Buffer.alloc(46 + r.name.length + ex);
      c.writeUInt32LE(0x02014b50, 0);
      c.writeUInt16LE(zip64 ? 45 : 20, 4);       // made by
      c.writeUInt16LE(zip64 ? 45 : 20, 6);       // needed
      c.writeUInt16LE(0x0800, 8);
      c.writeUInt16LE(0, 10);
      c.writeUInt32LE(0x00210000, 12);
      c.writeUInt32LE(r.crc, 16);
      c.writeUInt32LE(zip64 ? U32_MAX : r.size, 20);
      c.writeUInt32LE(zip64 ? U32_MAX : r.size, 24);
      c.writeUInt16LE(r.name.length, 28);
      c.writeUInt16LE(ex, 30);
      c.writeUInt32LE(zip64 ? U32_MAX : r.offset, 42);
      r.name.copy(c, 46);
      if (zip64) {
        const x = 46 + r.name.length;
        c.writeUInt16LE(0x0001, x); c.writeUInt16LE(24, x + 2);
        c.writeBigUInt64LE(BigInt(r.size), x + 4);
        c.writeBigUInt64LE(BigInt(r.size), x + 12);
        c.writeBigUInt64LE(BigInt(r.offset), x + 20);
      }
      await write(c);
    }
    const cdSize = offset - cdStart;
    const n = central.length;
    const e64 = Buffer.alloc(56 + 20 + 22);
    e64.writeUInt32LE(0x06064b50, 0);
    e64.writeBigUInt64LE(44n, 4);                // size of the rest of the record
    e64.writeUInt16LE(45, 12); e64.writeUInt16LE(45, 14);
    e64.writeBigUInt64LE(BigInt(n), 24); e64.writeBigUInt64LE(BigInt(n), 32);
    e64.writeBigUInt64LE(BigInt(cdSize), 40); e64.writeBigUInt64LE(BigInt(cdStart), 48);
    e64.writeUInt32LE(0x07064b50, 56);           // locator
    e64.writeBigUInt64LE(BigInt(offset), 64);
    e64.writeUInt32LE(1, 72);
    const e = 76;                                // classic end record
    e64.writeUInt32LE(0x06054b50, e);
    e64.writeUInt16LE(Math.min(n, 0xffff), e + 8); e64.writeUInt16LE(Math.min(n, 0xffff), e + 10);
    e64.writeUInt32LE(Math.min(cdSize, U32_MAX), e + 12);
    e64.writeUInt32LE(Math.min(cdStart, U32_MAX), e + 16);
    await write(e64);
    await fh.sync();
    await fh.close();
    await fs.promises.rename(tmp, file);
    ok = true;
  } finally {
    if (!ok) {
      await fh.close().catch(() => undefined);
      await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    }
  }
}
