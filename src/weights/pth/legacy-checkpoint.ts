// torch.save's legacy format (_use_new_zipfile_serialization=False, and all
// torch < 1.6): consecutive pickles (magic number, protocol version,
// sys_info, the object, the sorted storage keys), then per key an int64
// element count and the raw bytes. The pickles are read from a growing
// prefix of the file; the storages are only located.
import type { FileHandle } from 'node:fs/promises';
import { CheckpointError } from '../errors';
import { PickleTruncatedError, unpickle, type UnpickleResult } from '../pickle';
import { MAX_PICKLE_BYTES, checkpointError, readExactly } from './io';
import { StorageGraph } from './storage-graph';
import { ELEMENT_SIZE } from './tensor-ref';

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;
/** First read of the file: the pickles of a VGG checkpoint fit in far less. */
const FIRST_READ = 1 << 20;
/** Read ahead past what a truncated pickle asked for, so growth steps are few. */
const READ_AHEAD = 1 << 16;

/**
 * The file's leading bytes, read on demand: a pickle that runs past them is
 * retried on a longer prefix (the unpickler says how far it wanted to read).
 */
class GrowingPrefix {
  private buf: Buffer = Buffer.alloc(0);

  constructor(
    private readonly fh: FileHandle,
    private readonly file: string,
    private readonly size: number,
  ) {}

  async init(): Promise<void> {
    this.buf = Buffer.alloc(Math.min(this.size, FIRST_READ));
    await readExactly(this.fh, this.buf, 0, this.file);
  }

  /** Runs `run` on the prefix, growing it until the pickle fits or the file (or the limit) ends. */
  async parse<T>(at: number, what: string, run: (b: Buffer) => T): Promise<T> {
    for (;;) {
      try {
        return run(this.buf);
      } catch (x) {
        if (!(x instanceof PickleTruncatedError)) throw x;
        if (this.buf.length >= this.size || x.needed > this.size) {
          throw checkpointError(
            'TRUNCATED',
            this.file,
            `The ${what} pickle starting at byte ${at} needs ${x.needed} bytes but the file has ${this.size}`,
          );
        }
        await this.grow(x.needed, what);
      }
    }
  }

  private async grow(needed: number, what: string): Promise<void> {
    const want = Math.min(this.size, MAX_PICKLE_BYTES, Math.max(needed + READ_AHEAD, this.buf.length * 2));
    if (want <= this.buf.length) throw checkpointError('LIMIT', this.file, `The ${what} pickle is larger than ${MAX_PICKLE_BYTES} bytes`);
    const grown = Buffer.alloc(want);
    this.buf.copy(grown);
    await readExactly(this.fh, grown.subarray(this.buf.length), this.buf.length, this.file);
    this.buf = grown;
  }
}

/**
 * The unpickled object of a legacy checkpoint, its tensors TensorRefs.
 * @throws CheckpointError BAD_MAGIC (not torch.save's legacy stream),
 * TRUNCATED, BAD_STORAGE, LIMIT and the pickle's codes.
 */
export async function readLegacyCheckpoint(fh: FileHandle, abs: string, file: string, size: number): Promise<unknown> {
  const prefix = new GrowingPrefix(fh, file, size);
  await prefix.init();
  const plain = (at: number, what: string) => prefix.parse(at, what, (b) => unpickle(b, at, { file }));

  const magic = await readMagic(plain, file);
  const proto = await plain(magic.end, 'protocol version');
  if (proto.value !== LEGACY_PROTOCOL)
    throw checkpointError('BAD_MAGIC', file, `Legacy checkpoint protocol version must be ${LEGACY_PROTOCOL} but is ${String(proto.value)}`);
  const sys = await plain(proto.end, 'sys_info');
  const bigEndian = sys.value instanceof Map && sys.value.get('little_endian') === false;

  let graph!: StorageGraph;
  const obj = await prefix.parse(sys.end, 'object', (b) => {
    graph = new StorageGraph(abs, file, true, bigEndian); // fresh on every retry
    return unpickle(b, sys.end, { file, persistentLoad: graph.persistentLoad, makeTensor: graph.makeTensor });
  });
  const keys = await plain(obj.end, 'storage key list');
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) {
    throw checkpointError('BAD_PICKLE', file, 'The legacy storage key list must be a list of strings');
  }
  await locateStorages(fh, graph, keys.value as string[], keys.end, { file, size, bigEndian });
  graph.finish();
  return obj.value;
}

type PlainPickle = (at: number, what: string) => Promise<UnpickleResult>;

/** The first pickle must be torch's magic number; any other pickle is not a checkpoint. */
async function readMagic(plain: PlainPickle, file: string): Promise<UnpickleResult> {
  const magic = await plain(0, 'magic number').catch((x) => {
    if (x instanceof CheckpointError && !['FORBIDDEN_GLOBAL', 'PICKLED_MODULE', 'TRUNCATED'].includes(x.code)) {
      throw checkpointError(
        'BAD_MAGIC',
        file,
        `Not a PyTorch checkpoint: the file starts like a pickle but not like torch.save's legacy format (${x.message})`,
      );
    }
    throw x;
  });
  const v = magic.value;
  // Any pickled value may stand first (a float made BigInt() throw: fuzz regression uncoded-ea24b4c9267c).
  const isMagic = typeof v === 'bigint' ? v === LEGACY_MAGIC : typeof v === 'number' && Number.isInteger(v) && BigInt(v) === LEGACY_MAGIC;
  if (!isMagic) {
    throw checkpointError(
      'BAD_MAGIC',
      file,
      'Not a PyTorch checkpoint: a pickle but without the legacy torch.save magic number 0x1950a86a20f9469cfc6c (a plain pickle is not a checkpoint)',
    );
  }
  return magic;
}

/** Walks the data section (per key an int64 element count, then the bytes) and records each storage's offset. */
async function locateStorages(
  fh: FileHandle,
  graph: StorageGraph,
  keys: string[],
  start: number,
  c: { file: string; size: number; bigEndian: boolean },
): Promise<void> {
  const { file, size } = c;
  let pos = start;
  const header = Buffer.alloc(8);
  const seen = new Set<string>();
  for (const key of keys) {
    const s = graph.storages.get(key);
    if (!s) throw checkpointError('BAD_STORAGE', file, `Storage key '${key}' in the key list is not used by any tensor`);
    if (seen.has(key)) throw checkpointError('BAD_STORAGE', file, `Storage key '${key}' appears twice in the key list`);
    seen.add(key);
    if (pos + 8 > size)
      throw checkpointError('TRUNCATED', file, `Storage '${key}' header at byte ${pos} is past the end of the file (${size} bytes)`);
    await readExactly(fh, header, pos, file);
    const count = c.bigEndian ? header.readBigInt64BE(0) : header.readBigInt64LE(0);
    pos += 8;
    if (count < 0n) throw checkpointError('BAD_STORAGE', file, `Storage '${key}' declares a negative element count ${count}`);
    const bytes = count * BigInt(ELEMENT_SIZE[s.dtype]);
    if (bytes > BigInt(size - pos)) {
      throw checkpointError('BAD_STORAGE', file, `Storage '${key}' claims ${bytes} bytes but the file has ${size - pos} left after byte ${pos}`);
    }
    if (Number(count) !== s.numel) {
      throw checkpointError('BAD_STORAGE', file, `Storage '${key}' holds ${count} elements in the file but the pickle declares ${s.numel}`);
    }
    s.byteOffset = pos;
    pos += Number(bytes);
  }
}
