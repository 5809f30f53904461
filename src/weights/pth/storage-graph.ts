// The step both .pth containers share: the unpickler's persistent ids become
// StorageRefs and _rebuild_tensor calls become TensorRefs. Storages get their
// file offsets only once the container has been walked, so tensors are
// collected here and finished together.
import type { StorageDType } from '../../binding';
import { RefusedGlobal, StorageType, describe, pickledModule, type TensorArgs } from '../pickle';
import { checkpointError } from './io';
import { ELEMENT_SIZE, TensorRef, checkTensorBounds } from './tensor-ref';

/** A storage named by a persistent id; its file offset is resolved after unpickling. */
export interface StorageRef {
  key: string;
  dtype: StorageDType;
  numel: number;
  /** Legacy storage views (view_metadata): a window into another storage. */
  base?: StorageRef;
  viewOffset: number;
  /** -1 until the container reader finds the storage's bytes. */
  byteOffset: number;
}

/** Longest storage key accepted; torch's keys are short decimal numbers. */
const MAX_KEY_LENGTH = 256;

/** Collects storages and tensors while one checkpoint pickle runs. */
export class StorageGraph {
  readonly storages = new Map<string, StorageRef>();
  /** Every StorageRef persistentLoad returned: only these rebuild tensors (no record that merely looks like one). */
  private readonly issued = new WeakSet<object>();
  private readonly tensors: Array<{ ref: TensorRef; storage: StorageRef }> = [];

  /**
   * @param abs - absolute path, recorded in every TensorRef
   * @param file - the path as the caller gave it, for messages
   * @param legacy - legacy format: storage views allowed, one key may be declared with several types
   */
  constructor(
    private readonly abs: string,
    private readonly file: string,
    private readonly legacy: boolean,
    private readonly bigEndian: boolean,
  ) {}

  /**
   * The unpickler's persistentLoad: ('storage', StorageType, key, location,
   * numel[, view]). The location ('cpu', 'cuda:0', ...) is where torch kept
   * the storage, not where its bytes are: they are read the same from any.
   */
  persistentLoad = (pid: unknown): unknown => {
    const file = this.file;
    // The legacy writer (torch.save(model, _use_new_zipfile_serialization=False)) records a module class with its source code.
    if (this.legacy && Array.isArray(pid) && pid[0] === 'module' && pid[1] instanceof RefusedGlobal) throw pickledModule(pid[1].path, file);
    if (!Array.isArray(pid) || pid[0] !== 'storage') {
      throw checkpointError(
        'BAD_PICKLE',
        file,
        `Only storage persistent ids are allowed but the pickle holds ${Array.isArray(pid) ? `('${String(pid[0])}', ...)` : describe(pid)}`,
      );
    }
    const [, type, key, , numel, view] = pid as unknown[];
    if (!(type instanceof StorageType))
      throw checkpointError('BAD_PICKLE', file, `Storage persistent id must name a torch.*Storage type but names ${describe(type)}`);
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH || /[\\/]|\.\./.test(key)) {
      throw checkpointError('BAD_PICKLE', file, `Storage key must be a short plain name but is ${JSON.stringify(String(key).slice(0, 60))}`);
    }
    if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
      throw checkpointError('BAD_STORAGE', file, `Storage '${key}' must declare a non-negative element count but declares ${String(numel)}`);
    }
    const root = this.rootStorage(key, type, numel);
    const ref = this.legacy && view !== undefined && view !== null ? this.view(root, key, view) : root;
    this.issued.add(ref);
    return ref;
  };

  /** The unpickler's makeTensor: a TensorRef whose offset is filled in by finish(). */
  makeTensor = (a: TensorArgs): TensorRef => {
    const s = a.storage as StorageRef;
    if (s === null || typeof s !== 'object' || !this.issued.has(s)) {
      throw checkpointError('BAD_TENSOR', this.file, 'A tensor must be rebuilt from a storage persistent id');
    }
    // _rebuild_tensor_v3 views the storage's bytes as its own dtype: count whole elements of that.
    const dtype = a.dtype ?? s.dtype;
    const numel = Math.floor((s.numel * ELEMENT_SIZE[s.dtype]) / ELEMENT_SIZE[dtype]);
    checkTensorBounds(a.size, a.stride, a.storageOffset, numel, `Tensor on storage '${s.key}'`, this.file);
    const ref = new TensorRef(this.abs, -1, dtype, numel, a.storageOffset, a.size.slice(), a.stride.slice(), this.bigEndian, s.key);
    this.tensors.push({ ref, storage: s });
    return ref;
  };

  /**
   * Fills in byteOffsets once every root storage has one.
   * @throws CheckpointError BAD_STORAGE for a storage the container has no bytes for.
   */
  finish(): void {
    for (const { ref, storage } of this.tensors) {
      const root = storage.base ?? storage;
      if (root.byteOffset < 0) throw checkpointError('BAD_STORAGE', this.file, `Storage '${root.key}' has no data in the file`);
      ref.byteOffset = root.byteOffset + storage.viewOffset * ELEMENT_SIZE[storage.dtype];
      (ref as { bigEndian: boolean }).bigEndian = this.bigEndian;
    }
  }

  private rootStorage(key: string, type: StorageType, numel: number): StorageRef {
    const known = this.storages.get(key);
    if (known && known.dtype !== type.dtype && !this.legacy) {
      throw checkpointError('BAD_STORAGE', this.file, `Storage '${key}' is declared both as ${known.dtype} and ${type.dtype}`);
    }
    if (known) return known;
    const root: StorageRef = { key, dtype: type.dtype, numel, viewOffset: 0, byteOffset: -1 };
    this.storages.set(key, root);
    return root;
  }

  /** Legacy storage views: (view_key, offset, view_size) into the root storage. */
  private view(root: StorageRef, key: string, view: unknown): StorageRef {
    if (!Array.isArray(view) || view.length !== 3) throw checkpointError('BAD_PICKLE', this.file, `Storage '${key}' has malformed view metadata`);
    const [, offset, viewSize] = view as unknown[];
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(viewSize) ||
      (offset as number) < 0 ||
      (viewSize as number) < 0 ||
      (offset as number) + (viewSize as number) > root.numel
    ) {
      throw checkpointError(
        'BAD_STORAGE',
        this.file,
        `Storage view of '${key}' at ${String(offset)} with ${String(viewSize)} elements does not fit its ${root.numel} elements`,
      );
    }
    return { key, dtype: root.dtype, numel: viewSize as number, base: root, viewOffset: offset as number, byteOffset: -1 };
  }
}
