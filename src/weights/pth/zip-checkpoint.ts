// torch.save's zip format (torch >= 1.6): `<root>/data.pkl` holds the object,
// `<root>/data/<key>` each storage's raw bytes (stored, 64-byte aligned or
// as torch 2.x's storage_alignment says), `<root>/byteorder` optionally
// 'little' or 'big'. torch 2.x adds `.format_version`, `.storage_alignment`,
// `version` and `.data/serialization_id`: bookkeeping, not needed to read.
// torch.jit.save writes the same zip plus code (see torchscript.ts). Only the
// pickle and the byteorder are read into memory; storages are located, not read.
import * as fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { PickleTruncatedError, unpickle } from '../pickle';
import { METHOD, ZipReader, fileSource, type ZipEntry } from '../zip';
import { MAX_PICKLE_BYTES, checkpointError } from './io';
import { StorageGraph } from './storage-graph';
import { ELEMENT_SIZE } from './tensor-ref';
import { isTorchScript, scriptStateDict } from './torchscript';

/** Largest byteorder entry: 'little' or 'big' and a newline. */
const MAX_BYTEORDER_BYTES = 16;

/** A zip archive's content: torch.save's object, or a TorchScript module's tensors by state_dict name. */
export interface ZipContents {
  torchScript: boolean;
  object: unknown;
}

/**
 * The unpickled object of a zip-format checkpoint, its tensors TensorRefs;
 * for a TorchScript archive the module's tensors by dotted name.
 * @throws CheckpointError TRUNCATED, BAD_ZIP (also: no data.pkl), LIMIT,
 * BAD_STORAGE and the pickle's codes.
 */
export async function readZipCheckpoint(fh: FileHandle, abs: string, file: string): Promise<ZipContents> {
  const zip = await ZipReader.open(await fileSource(fh), (code, msg) => checkpointError(code, file, msg));
  const pkl = findPickle(zip, file);
  const prefix = pkl.name.slice(0, pkl.name.length - 'data.pkl'.length);
  const bigEndian = await readByteOrder(zip, prefix, file);
  const torchScript = isTorchScript(zip, prefix);
  const graph = new StorageGraph(abs, file, false, bigEndian);
  const value = runPickle(await zip.readEntry(pkl, MAX_PICKLE_BYTES), graph, file, torchScript);
  for (const s of graph.storages.values()) {
    const name = `${prefix}data/${s.key}`;
    const e = storageEntry(zip, name, s.key, file);
    const bytes = s.numel * ELEMENT_SIZE[s.dtype];
    if (bytes > e.size)
      throw checkpointError('BAD_STORAGE', file, `Storage '${s.key}' (${s.dtype}) claims ${bytes} bytes but the file has ${e.size} in ${name}`);
    s.byteOffset = await zip.dataOffset(e);
  }
  graph.finish();
  return { torchScript, object: torchScript ? scriptStateDict(value, file) : value };
}

/**
 * Whether a zip archive holds a `data.pkl` (torch.save's) rather than being,
 * say, the ONNX zoo's .model. A damaged archive answers true, so that the
 * .pth reader reports what is wrong with it.
 */
export async function holdsTorchPickle(file: string): Promise<boolean> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const zip = await ZipReader.open(await fileSource(fh), (code, msg) => checkpointError(code, file, msg));
    return [...zip.entries.values()].some((e) => e.name === 'data.pkl' || e.name.endsWith('/data.pkl'));
  } catch {
    return true;
  } finally {
    await fh.close();
  }
}

/** `data.pkl` at the top or under the archive's root folder (named after the file torch wrote). */
function findPickle(zip: ZipReader, file: string): ZipEntry {
  for (const e of zip.entries.values()) if (e.name === 'data.pkl' || e.name.endsWith('/data.pkl')) return e;
  const names = [...zip.entries.keys()].slice(0, 5).join(', ');
  throw checkpointError('BAD_ZIP', file, `The zip has no data.pkl entry, so it is not a torch.save file (entries: ${names || 'none'})`);
}

async function readByteOrder(zip: ZipReader, prefix: string, file: string): Promise<boolean> {
  const entry = zip.entries.get(`${prefix}byteorder`);
  if (!entry) return false; // torch < 1.10 wrote none: little-endian
  const order = (await zip.readEntry(entry, MAX_BYTEORDER_BYTES)).toString('latin1').trim();
  if (order !== 'little' && order !== 'big')
    throw checkpointError('BAD_ZIP', file, `byteorder entry must be 'little' or 'big' but is ${JSON.stringify(order)}`);
  return order === 'big';
}

function runPickle(pickle: Buffer, graph: StorageGraph, file: string, torchScript: boolean): unknown {
  try {
    return unpickle(pickle, 0, { file, persistentLoad: graph.persistentLoad, makeTensor: graph.makeTensor, torchScript }).value;
  } catch (x) {
    if (x instanceof PickleTruncatedError) throw checkpointError('TRUNCATED', file, `data.pkl ends before its STOP opcode: ${x.detail}`);
    throw x;
  }
}

/** The storage's entry: native code preads it in place, so it must be stored, not compressed. */
function storageEntry(zip: ZipReader, name: string, key: string, file: string): ZipEntry {
  const e = zip.entries.get(name);
  if (!e) throw checkpointError('BAD_STORAGE', file, `Storage '${key}' is missing: the zip has no entry ${name}`);
  if (e.method !== METHOD.STORED)
    throw checkpointError('BAD_ZIP', file, `Storage entry ${name} is compressed (method ${e.method}); torch stores tensors uncompressed`);
  return e;
}
