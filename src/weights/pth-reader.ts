// Reads torch.save containers (zip >= 1.6 and the legacy stream) into a JS
// object graph whose tensors are TensorRefs: file offsets + shape/stride, not
// data. Native code preads the bytes straight into tensor memory; only the
// pickles (small) are read into JS.
//
// The zip central directory is parsed here rather than with yauzl: we need no
// decompression or streaming, only name → (offset, size) for a few entries,
// and hand-parsing lets every defect surface as a CheckpointError naming the
// file and the record (yauzl reports untyped Errors through callbacks and
// adds filename rules torch does not have).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { FileTensorSource, StorageDType } from '../binding';
import { CheckpointError } from './errors';
import { bfloat16ToFloat, halfToFloat } from './half';
import { PickleTruncatedError, StorageType, TensorArgs, unpickle } from './pickle';

export const ELEMENT_SIZE: Readonly<Record<StorageDType, number>> = {
  float32: 4, float16: 2, bfloat16: 2, float64: 8,
  int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

/** Most elements one tensor may have (2^32): beyond that a shape is hostile, not a VGG. */
const MAX_TENSOR_NUMEL = 2 ** 32;
/** Largest pickle we read into memory. */
const MAX_PICKLE_BYTES = 1024 * 1024 * 1024;

/** A tensor stored in a checkpoint file; implements the native FileTensorSource contract. */
export class TensorRef implements FileTensorSource {
  readonly kind = 'file' as const;
  constructor(
    readonly path: string,
    /** Absolute offset of the storage's first element (filled in once the container is walked). */
    public byteOffset: number,
    readonly dtype: StorageDType,
    readonly storageNumel: number,
    readonly storageOffset: number,
    readonly shape: number[],
    readonly stride: number[],
    readonly bigEndian: boolean,
    /** The storage's key in the checkpoint (zip `data/<key>` or legacy key). */
    readonly storageKey: string,
  ) {}

  get numel(): number { return this.shape.reduce((a, b) => a * b, 1); }
}

export interface PthContents {
  format: 'zip' | 'legacy';
  object: unknown;
}

/** A storage named by a persistent id; its file offset is resolved after unpickling. */
interface StorageRef {
  key: string;
  dtype: StorageDType;
  numel: number;
  /** Legacy storage views (view_metadata): a window into another storage. */
  base?: StorageRef;
  viewOffset: number;
  byteOffset: number; // -1 until resolved
}

const err = (code: ConstructorParameters<typeof CheckpointError>[0], file: string, msg: string): CheckpointError =>
  new CheckpointError(code, `${msg} (checkpoint ${file})`, file);

/** Reads a torch.save file (zip or legacy format). Tensor bytes are not read. */
export async function readPth(file: string): Promise<PthContents> {
  const abs = path.resolve(file);
  const fh = await fs.promises.open(abs, 'r');
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(Math.min(4, size));
    await readExactly(fh, head, 0, file);
    if (size >= 4 && head.readUInt32LE(0) === 0x04034b50) {
      return { format: 'zip', object: await readZip(fh, abs, file, size) };
    }
    if (size >= 1 && head[0] === 0x80) {
      return { format: 'legacy', object: await readLegacy(fh, abs, file, size) };
    }
    throw err('BAD_MAGIC', file, size === 0
      ? 'Not a PyTorch checkpoint: the file is empty'
      : `Not a PyTorch checkpoint: expected a zip archive (PK\\x03\\x04) or a legacy pickle stream (0x80) but the file starts with 0x${head.toString('hex')}`);
  } finally {
    await fh.close();
  }
}

async function readExactly(fh: fs.promises.FileHandle, buf: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw err('TRUNCATED', file, `The file ends at byte ${position + done} but ${buf.length} bytes were expected from byte ${position}`);
    done += bytesRead;
  }
}

/** Shared pickle → object step: persistent ids become StorageRefs, tensors TensorRefs. */
class GraphBuilder {
  readonly storages = new Map<string, StorageRef>();
  readonly tensors: Array<{ ref: TensorRef; storage: StorageRef }> = [];

  constructor(private readonly abs: string, private readonly file: string, private readonly legacy: boolean, private bigEndian: boolean) {}

  setBigEndian(v: boolean): void { this.bigEndian = v; }

  persistentLoad = (pid: unknown): unknown => {
    const file = this.file;
    if (!Array.isArray(pid) || pid[0] !== 'storage') {
      throw err('BAD_PICKLE', file, `Only storage persistent ids are allowed but the pickle holds ${Array.isArray(pid) ? `('${String(pid[0])}', ...)` : typeof pid}`);
    }
    const [, type, key, , numel, view] = pid as unknown[];
    if (!(type instanceof StorageType)) throw err('BAD_PICKLE', file, `Storage persistent id must name a torch.*Storage type but names ${String(type)}`);
    if (typeof key !== 'string' || key.length === 0 || key.length > 256 || /[\\/]|\.\./.test(key)) {
      throw err('BAD_PICKLE', file, `Storage key must be a short plain name but is ${JSON.stringify(String(key).slice(0, 60))}`);
    }
    if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
      throw err('BAD_STORAGE', file, `Storage '${key}' must declare a non-negative element count but declares ${String(numel)}`);
    }
    let root = this.storages.get(key);
    if (root && root.dtype !== type.dtype && !this.legacy) {
      throw err('BAD_STORAGE', file, `Storage '${key}' is declared both as ${root.dtype} and ${type.dtype}`);
    }
    if (!root) {
      root = { key, dtype: type.dtype, numel, viewOffset: 0, byteOffset: -1 };
      this.storages.set(key, root);
    }
    if (this.legacy && view !== undefined && view !== null) {
      // Legacy storage views: (view_key, offset, view_size) into the root storage.
      if (!Array.isArray(view) || view.length !== 3) throw err('BAD_PICKLE', file, `Storage '${key}' has malformed view metadata`);
      const [, offset, viewSize] = view as unknown[];
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(viewSize) || (offset as number) < 0 || (viewSize as number) < 0 ||
          (offset as number) + (viewSize as number) > root.numel) {
        throw err('BAD_STORAGE', file, `Storage view of '${key}' at ${String(offset)} with ${String(viewSize)} elements does not fit its ${root.numel} elements`);
      }
      return { key, dtype: root.dtype, numel: viewSize as number, base: root, viewOffset: offset as number, byteOffset: -1 } satisfies StorageRef;
    }
    return root;
  };

  makeTensor = (a: TensorArgs): TensorRef => {
    const file = this.file;
    const s = a.storage as StorageRef;
    if (!s || typeof s !== 'object' || typeof (s as StorageRef).dtype !== 'string' || !('viewOffset' in s)) {
      throw err('BAD_TENSOR', file, 'A tensor must be rebuilt from a storage persistent id');
    }
    checkTensorBounds(a.size, a.stride, a.storageOffset, s.numel, `Tensor on storage '${s.key}'`, file);
    const ref = new TensorRef(this.abs, -1, s.dtype, s.numel, a.storageOffset, a.size.slice(), a.stride.slice(), this.bigEndian, s.key);
    this.tensors.push({ ref, storage: s });
    return ref;
  };

  /** Fills in byteOffsets once every root storage has one. */
  finish(): void {
    for (const { ref, storage } of this.tensors) {
      const root = storage.base ?? storage;
      if (root.byteOffset < 0) throw err('BAD_STORAGE', this.file, `Storage '${root.key}' has no data in the file`);
      ref.byteOffset = root.byteOffset + storage.viewOffset * ELEMENT_SIZE[storage.dtype];
      (ref as { bigEndian: boolean }).bigEndian = this.bigEndian;
    }
  }
}

/** Shape/stride/offset must stay inside the storage; sizes non-negative and sane. */
export function checkTensorBounds(shape: number[], stride: number[], offset: number, storageNumel: number, what: string, file: string): void {
  if (shape.length > 64) throw err('BAD_TENSOR', file, `${what} has ${shape.length} dimensions (at most 64 accepted)`);
  if (offset < 0) throw err('BAD_TENSOR', file, `${what} has negative storage offset ${offset}`);
  let numel = 1;
  let last = offset;
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] < 0) throw err('BAD_TENSOR', file, `${what} has negative size ${shape[i]} in dimension ${i} (shape [${shape.join(', ')}])`);
    if (stride[i] < 0) throw err('BAD_TENSOR', file, `${what} has negative stride ${stride[i]} in dimension ${i}`);
    numel *= shape[i];
  }
  if (numel > MAX_TENSOR_NUMEL) throw err('BAD_TENSOR', file, `${what} has shape [${shape.join(', ')}] = ${numel} elements (at most 2^32 accepted)`);
  if (numel === 0) return;
  for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * stride[i];
  if (!Number.isSafeInteger(last) || last >= storageNumel) {
    throw err('BAD_TENSOR', file,
      `${what} with shape [${shape.join(', ')}], stride [${stride.join(', ')}] and offset ${offset} reaches element ${last} but the storage has ${storageNumel} elements`);
  }
}

// ---------------------------------------------------------------- zip format

interface ZipEntry {
  name: string;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

async function readZip(fh: fs.promises.FileHandle, abs: string, file: string, size: number): Promise<unknown> {
  const entries = await readCentralDirectory(fh, file, size);
  const pkl = [...entries.values()].find((e) => e.name === 'data.pkl' || e.name.endsWith('/data.pkl'));
  if (!pkl) {
    const names = [...entries.keys()].slice(0, 5).join(', ');
    throw err('BAD_ZIP', file, `The zip has no data.pkl entry, so it is not a torch.save file (entries: ${names || 'none'})`);
  }
  const prefix = pkl.name.slice(0, pkl.name.length - 'data.pkl'.length);
  const readEntry = async (e: ZipEntry, limit: number): Promise<Buffer> => {
    if (e.size > limit) throw err('LIMIT', file, `Entry ${e.name} holds ${e.size} bytes (at most ${limit} read into memory)`);
    const start = await dataOffset(fh, e, file, size);
    const raw = Buffer.alloc(e.compressedSize);
    await readExactly(fh, raw, start, file);
    let data: Buffer;
    if (e.method === 0) data = raw;
    else if (e.method === 8) {
      try { data = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) }); } catch (x) {
        throw err('BAD_ZIP', file, `Entry ${e.name} cannot be inflated: ${(x as Error).message}`);
      }
    } else throw err('BAD_ZIP', file, `Entry ${e.name} uses compression method ${e.method}; only stored (0) and deflate (8) are read`);
    if (data.length !== e.size) throw err('BAD_ZIP', file, `Entry ${e.name} should hold ${e.size} bytes but holds ${data.length}`);
    if ((zlib.crc32(data) >>> 0) !== e.crc) throw err('BAD_ZIP', file, `Entry ${e.name} fails its CRC-32 check (the file is damaged)`);
    return data;
  };

  const byteorderEntry = entries.get(`${prefix}byteorder`);
  let bigEndian = false;
  if (byteorderEntry) {
    const order = (await readEntry(byteorderEntry, 16)).toString('latin1').trim();
    if (order !== 'little' && order !== 'big') throw err('BAD_ZIP', file, `byteorder entry must be 'little' or 'big' but is ${JSON.stringify(order)}`);
    bigEndian = order === 'big';
  }
  const pickle = await readEntry(pkl, MAX_PICKLE_BYTES);
  const g = new GraphBuilder(abs, file, false, bigEndian);
  let value: unknown;
  try {
    ({ value } = unpickle(pickle, 0, { file, persistentLoad: g.persistentLoad, makeTensor: g.makeTensor }));
  } catch (x) {
    if (x instanceof PickleTruncatedError) throw err('TRUNCATED', file, `data.pkl ends before its STOP opcode: ${x.detail}`);
    throw x;
  }
  for (const s of g.storages.values()) {
    const name = `${prefix}data/${s.key}`;
    const e = entries.get(name);
    if (!e) throw err('BAD_STORAGE', file, `Storage '${s.key}' is missing: the zip has no entry ${name}`);
    if (e.method !== 0) throw err('BAD_ZIP', file, `Storage entry ${name} is compressed (method ${e.method}); torch stores tensors uncompressed`);
    const bytes = s.numel * ELEMENT_SIZE[s.dtype];
    if (bytes > e.size) throw err('BAD_STORAGE', file, `Storage '${s.key}' (${s.dtype}) claims ${bytes} bytes but the file has ${e.size} in ${name}`);
    s.byteOffset = await dataOffset(fh, e, file, size);
  }
  g.finish();
  return value;
}

/** Where an entry's data starts: after the LOCAL header's own name/extra (they may differ from the central ones). */
async function dataOffset(fh: fs.promises.FileHandle, e: ZipEntry, file: string, size: number): Promise<number> {
  if (e.localOffset + 30 > size) throw err('TRUNCATED', file, `Zip entry ${e.name} has its header at ${e.localOffset} but the file has ${size} bytes`);
  const h = Buffer.alloc(30);
  await readExactly(fh, h, e.localOffset, file);
  if (h.readUInt32LE(0) !== 0x04034b50) throw err('BAD_ZIP', file, `Zip entry ${e.name}: no local header at byte ${e.localOffset} (damaged central directory)`);
  const start = e.localOffset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
  if (start + e.compressedSize > size) {
    throw err('TRUNCATED', file, `Zip entry ${e.name} needs bytes ${start}..${start + e.compressedSize} but the file has ${size}`);
  }
  return start;
}

async function readCentralDirectory(fh: fs.promises.FileHandle, file: string, size: number): Promise<Map<string, ZipEntry>> {
  const tailLen = Math.min(size, 22 + 0xffff + 20);
  const tail = Buffer.alloc(tailLen);
  await readExactly(fh, tail, size - tailLen, file);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === 0x06054b50 && i + 22 + tail.readUInt16LE(i + 20) === tailLen) { eocd = i; break; }
  }
  if (eocd < 0) {
    throw err('TRUNCATED', file, 'The zip archive has no end-of-central-directory record: the file is truncated or damaged');
  }
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  const eocdAbs = size - tailLen + eocd;
  let cdEnd = eocdAbs;
  if (eocd >= 20 && tail.readUInt32LE(eocd - 20) === 0x07064b50) {
    // ZIP64: the locator points at the ZIP64 end record holding 64-bit fields.
    const at = Number(tail.readBigUInt64LE(eocd - 20 + 8));
    if (at + 56 > eocdAbs - 20) throw err('BAD_ZIP', file, `ZIP64 end record offset ${at} is outside the file`);
    const z = Buffer.alloc(56);
    await readExactly(fh, z, at, file);
    if (z.readUInt32LE(0) !== 0x06064b50) throw err('BAD_ZIP', file, `No ZIP64 end record at byte ${at}`);
    count = Number(z.readBigUInt64LE(32));
    cdSize = Number(z.readBigUInt64LE(40));
    cdOffset = Number(z.readBigUInt64LE(48));
    cdEnd = at;
  }
  if (cdOffset + cdSize > cdEnd) {
    throw err('BAD_ZIP', file, `Central directory at ${cdOffset} with ${cdSize} bytes overlaps the end record at ${cdEnd} (truncated or damaged zip)`);
  }
  if (count > cdSize / 46 || cdSize > 256 * 1024 * 1024) throw err('BAD_ZIP', file, `Central directory claims ${count} entries in ${cdSize} bytes`);
  const cd = Buffer.alloc(cdSize);
  await readExactly(fh, cd, cdOffset, file);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) {
      throw err('BAD_ZIP', file, `Central directory entry ${i} at byte ${cdOffset + p} is damaged (no signature)`);
    }
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length) throw err('BAD_ZIP', file, `Central directory entry ${i} runs past the directory`);
    const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
    let compressedSize = cd.readUInt32LE(p + 20);
    let sz = cd.readUInt32LE(p + 24);
    let localOffset = cd.readUInt32LE(p + 42);
    // ZIP64 extra field: 64-bit values for those fields that read 0xFFFFFFFF, in this order.
    let x = p + 46 + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = cd.readUInt16LE(x);
      const len = cd.readUInt16LE(x + 2);
      if (id === 0x0001) {
        let q = x + 4;
        const take = (): number => {
          if (q + 8 > x + 4 + len) throw err('BAD_ZIP', file, `ZIP64 field of ${name} is too short`);
          const v = Number(cd.readBigUInt64LE(q)); q += 8; return v;
        };
        if (sz === 0xffffffff) sz = take();
        if (compressedSize === 0xffffffff) compressedSize = take();
        if (localOffset === 0xffffffff) localOffset = take();
      }
      x += 4 + len;
    }
    if (localOffset + 30 > cdOffset || localOffset + compressedSize > cdOffset) {
      throw err('BAD_ZIP', file, `Zip entry ${name} claims ${compressedSize} bytes at ${localOffset}, beyond the data area (${cdOffset} bytes)`);
    }
    entries.set(name, {
      name, method: cd.readUInt16LE(p + 10), crc: cd.readUInt32LE(p + 16),
      compressedSize, size: sz, localOffset,
    });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

// ------------------------------------------------------------- legacy format

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

async function readLegacy(fh: fs.promises.FileHandle, abs: string, file: string, size: number): Promise<unknown> {
  // Consecutive pickles at the start of the file; read a prefix and grow it
  // when a pickle needs more (the unpickler tells how far it wanted to read).
  let buf = Buffer.alloc(Math.min(size, 1 << 20));
  await readExactly(fh, buf, 0, file);
  const next = async <T>(at: number, what: string, run: (b: Buffer) => T): Promise<T> => {
    for (;;) {
      try {
        return run(buf);
      } catch (x) {
        if (!(x instanceof PickleTruncatedError) || buf.length >= size) {
          if (x instanceof PickleTruncatedError) {
            throw err('TRUNCATED', file, `The ${what} pickle starting at byte ${at} needs ${x.needed} bytes but the file has ${size}`);
          }
          throw x;
        }
        if (x.needed > size) {
          throw err('TRUNCATED', file, `The ${what} pickle starting at byte ${at} needs ${x.needed} bytes but the file has ${size}`);
        }
        const want = Math.min(size, MAX_PICKLE_BYTES, Math.max(x.needed + (1 << 16), buf.length * 2));
        if (want <= buf.length) throw err('LIMIT', file, `The ${what} pickle is larger than ${MAX_PICKLE_BYTES} bytes`);
        const grown = Buffer.alloc(want);
        buf.copy(grown);
        await readExactly(fh, grown.subarray(buf.length), buf.length, file);
        buf = grown;
      }
    }
  };
  const plain = (at: number, what: string) => next(at, what, (b) => unpickle(b, at, { file }));

  const magic = await plain(0, 'magic number').catch((x) => {
    if (x instanceof CheckpointError && x.code !== 'FORBIDDEN_GLOBAL' && x.code !== 'TRUNCATED') {
      throw err('BAD_MAGIC', file, `Not a PyTorch checkpoint: the file starts like a pickle but not like torch.save's legacy format (${x.message})`);
    }
    throw x;
  });
  if (BigInt(typeof magic.value === 'number' || typeof magic.value === 'bigint' ? magic.value : -1) !== LEGACY_MAGIC) {
    throw err('BAD_MAGIC', file, 'Not a PyTorch checkpoint: a pickle but without the legacy torch.save magic number 0x1950a86a20f9469cfc6c (a plain pickle is not a checkpoint)');
  }
  const proto = await plain(magic.end, 'protocol version');
  if (proto.value !== LEGACY_PROTOCOL) throw err('BAD_MAGIC', file, `Legacy checkpoint protocol version must be ${LEGACY_PROTOCOL} but is ${String(proto.value)}`);
  const sys = await plain(proto.end, 'sys_info');
  let bigEndian = false;
  if (sys.value instanceof Map && sys.value.get('little_endian') === false) bigEndian = true;

  let g!: GraphBuilder;
  const obj = await next(sys.end, 'object', (b) => {
    g = new GraphBuilder(abs, file, true, bigEndian); // fresh on every retry
    return unpickle(b, sys.end, { file, persistentLoad: g.persistentLoad, makeTensor: g.makeTensor });
  });
  const keys = await plain(obj.end, 'storage key list');
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) {
    throw err('BAD_PICKLE', file, 'The legacy storage key list must be a list of strings');
  }

  // Walk the data section: per key an int64 element count, then the raw bytes.
  let pos = keys.end;
  const header = Buffer.alloc(8);
  const seen = new Set<string>();
  for (const key of keys.value as string[]) {
    const s = g.storages.get(key);
    if (!s) throw err('BAD_STORAGE', file, `Storage key '${key}' in the key list is not used by any tensor`);
    if (seen.has(key)) throw err('BAD_STORAGE', file, `Storage key '${key}' appears twice in the key list`);
    seen.add(key);
    if (pos + 8 > size) throw err('TRUNCATED', file, `Storage '${key}' header at byte ${pos} is past the end of the file (${size} bytes)`);
    await readExactly(fh, header, pos, file);
    const count = bigEndian ? header.readBigInt64BE(0) : header.readBigInt64LE(0);
    pos += 8;
    const esize = ELEMENT_SIZE[s.dtype];
    if (count < 0n) throw err('BAD_STORAGE', file, `Storage '${key}' declares a negative element count ${count}`);
    const bytes = count * BigInt(esize);
    if (bytes > BigInt(size - pos)) {
      throw err('BAD_STORAGE', file, `Storage '${key}' claims ${bytes} bytes but the file has ${size - pos} left after byte ${pos}`);
    }
    if (Number(count) !== s.numel) {
      throw err('BAD_STORAGE', file, `Storage '${key}' holds ${count} elements in the file but the pickle declares ${s.numel}`);
    }
    s.byteOffset = pos;
    pos += Number(bytes);
  }
  g.finish();
  return obj.value;
}

// ---------------------------------------------------------------- materialize

/**
 * Reads one tensor's elements into JS memory, contiguous in row-major order:
 * float types become Float32Array, integer and bool types BigInt64Array.
 * For tests and the writer round-trip; the load path hands TensorRefs to native code.
 */
export async function materialize(ref: FileTensorSource): Promise<Float32Array | BigInt64Array> {
  const { shape, stride, storageOffset, dtype } = ref;
  const esize = ELEMENT_SIZE[dtype];
  if (!esize) throw new CheckpointError('BAD_TENSOR', `Unknown dtype ${String(dtype)} for ${ref.path}`, ref.path);
  checkTensorBounds(shape, stride, storageOffset, ref.storageNumel, 'Tensor', ref.path);
  const numel = shape.reduce((a, b) => a * b, 1);
  const isFloat = dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16' || dtype === 'float64';
  let out: Float32Array | BigInt64Array;
  try {
    out = isFloat ? new Float32Array(numel) : new BigInt64Array(numel);
  } catch {
    throw new CheckpointError('LIMIT', `Tensor of ${numel} elements does not fit in memory (${ref.path})`, ref.path);
  }
  if (numel === 0) return out;
  let last = storageOffset;
  for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * stride[i];
  const start = ref.byteOffset + storageOffset * esize;
  const spanBytes = (last - storageOffset + 1) * esize;
  const fh = await fs.promises.open(ref.path, 'r');
  try {
    const size = (await fh.stat()).size;
    if (start + spanBytes > size || ref.byteOffset + ref.storageNumel * esize > size) {
      throw new CheckpointError('BAD_STORAGE',
        `Storage at byte ${ref.byteOffset} claims ${ref.storageNumel * esize} bytes but the file has ${size} (${ref.path})`, ref.path);
    }
    const contiguous = isContiguous(shape, stride);
    if (contiguous && dtype === 'float32' && !ref.bigEndian) {
      // Fast path: read straight into the result.
      await readExactly(fh, new Uint8Array(out.buffer), start, ref.path);
      return out;
    }
    const raw = Buffer.alloc(spanBytes);
    await readExactly(fh, raw, start, ref.path);
    if (ref.bigEndian && esize > 1) swapInPlace(raw, esize);
    const get = elementReader(raw, dtype);
    if (contiguous) {
      for (let i = 0; i < numel; i++) (out as Float32Array)[i] = get(i) as number;
    } else {
      // Odometer over the shape, element index relative to storageOffset.
      const idx = new Array(shape.length).fill(0);
      let at = 0;
      for (let n = 0; n < numel; n++) {
        (out as Float32Array)[n] = get(at) as number;
        for (let d = shape.length - 1; d >= 0; d--) {
          if (++idx[d] < shape[d]) { at += stride[d]; break; }
          at -= (shape[d] - 1) * stride[d];
          idx[d] = 0;
        }
      }
    }
    return out;
  } finally {
    await fh.close();
  }
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d];
  }
  return true;
}

function swapInPlace(b: Buffer, esize: number): void {
  if (esize === 2) b.swap16(); else if (esize === 4) b.swap32(); else if (esize === 8) b.swap64();
}

/** Element i of a little-endian buffer as number (floats) or bigint (integers). */
function elementReader(b: Buffer, dtype: StorageDType): (i: number) => number | bigint {
  switch (dtype) {
    case 'float32': return (i) => b.readFloatLE(i * 4);
    case 'float64': return (i) => b.readDoubleLE(i * 8); // rounded by Float32Array assignment
    case 'float16': return (i) => halfToFloat(b.readUInt16LE(i * 2));
    case 'bfloat16': return (i) => bfloat16ToFloat(b.readUInt16LE(i * 2));
    case 'int64': return (i) => b.readBigInt64LE(i * 8);
    case 'int32': return (i) => BigInt(b.readInt32LE(i * 4));
    case 'int16': return (i) => BigInt(b.readInt16LE(i * 2));
    case 'int8': return (i) => BigInt(b.readInt8(i));
    case 'uint8': return (i) => BigInt(b[i]);
    case 'bool': return (i) => (b[i] ? 1n : 0n);
  }
}

