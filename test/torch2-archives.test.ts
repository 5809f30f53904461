// What torch 2.x writes, read (or refused) as torch 2.13 writes it: its new
// rebuild functions and zip entries, trainer records beside the weights,
// whole pickled modules and TorchScript archives. torch 2.13 (the official
// wheel, test/helpers/torch2.ts) writes every file and dumps what torch
// itself loads back from it (test/fixtures/torch2/write_archives.py); our
// tensors must equal torch's bit for bit. Hostile variants are built here.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointError, vgg } from '../src';
import { InertObject, MAX_INERT_BYTES, NumpyArray, NumpyScalar, unpickle } from '../src/weights/pickle';
import { interpretCheckpoint } from '../src/weights/layout';
import { materialize, readPth, TensorRef } from '../src/weights/pth';
import { torchvisionNames } from '../src/weights/torchvision-names';
import { tempDir } from './helpers/python';
import { torch2Python } from './helpers/torch2';

const SCRIPT = path.resolve(__dirname, 'fixtures', 'torch2', 'write_archives.py');

interface Dumped {
  shape: number[];
  kind: 'float32' | 'int64';
  offset: number;
  bytes: number;
}
interface Archive {
  file: string;
  entries?: string[];
  globals?: string[];
  tensors?: Record<string, Dumped>;
  [extra: string]: unknown;
}

/** Every tensor of an unpickled object by dotted path through its dicts, as the fixture's tensors_of names them. */
function tensorsOf(v: unknown, prefix = '', out = new Map<string, TensorRef>()): Map<string, TensorRef> {
  if (!(v instanceof Map)) return out;
  for (const [k, x] of v) {
    if (x instanceof TensorRef) out.set(`${prefix}${k}`, x);
    else tensorsOf(x, `${prefix}${k}.`, out);
  }
  return out;
}

const bytesOf = (a: ArrayBufferView): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Our tensors must be torch's: the same names in the same order, shapes, and bytes. */
async function assertSameAsTorch(ours: Map<string, TensorRef>, archive: Archive, dump: Buffer): Promise<void> {
  const expected = archive.tensors!;
  assert.deepEqual([...ours.keys()], Object.keys(expected), 'tensor names');
  for (const [k, d] of Object.entries(expected)) {
    const ref = ours.get(k)!;
    assert.deepEqual(ref.shape, d.shape, `${k} shape`);
    const data = await materialize(ref);
    assert.equal(data instanceof Float32Array ? 'float32' : 'int64', d.kind, `${k} element type`);
    assert.ok(bytesOf(data).equals(dump.subarray(d.offset, d.offset + d.bytes)), `${k} differs from what torch loads`);
  }
}

/** The refusal of `file` must be a CheckpointError of `code` whose message matches and names the file. */
async function assertRefused(file: string, code: string, message: RegExp): Promise<void> {
  await assert.rejects(readPth(file), (e: unknown) => {
    assert.ok(e instanceof CheckpointError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    assert.ok(e.message.includes(file), `the message names the file: ${e.message}`);
    return true;
  });
}

describe('torch 2.x archives as torch 2.13 writes them (skipped without a torch 2.x CPU wheel on disk)', function () {
  this.timeout(120000);
  const run = torch2Python();
  const { dir, cleanup } = tempDir();
  let report: Record<string, Archive>;
  const file = (name: string) => path.join(dir, report[name].file);
  const dumpOf = (name: string) => fs.readFileSync(path.join(dir, `${name}.bin`));
  const read = async (name: string) => readPth(file(name));
  after(cleanup);
  before(async function () {
    if (!run) return this.skip(); // no torch 2.x CPU wheel on this machine: nothing writes these files
    await run(`import runpy, sys; sys.argv = ${JSON.stringify([SCRIPT, dir])}; runpy.run_path(sys.argv[0], run_name='__main__')`);
    report = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8'));
  });

  it("torch 2.x's new entries, rebuilds and devices, storages aligned to 4096: bit-exact", async () => {
    const a = report.aligned;
    for (const e of ['.format_version', '.storage_alignment', 'byteorder', 'version', '.data/serialization_id'])
      assert.ok(a.entries!.includes(`aligned/${e}`), e);
    for (const g of ['torch._tensor._rebuild_from_type_v2', 'torch.Tensor', 'torch._utils._rebuild_parameter_with_state', 'torch.device']) {
      assert.ok(a.globals!.includes(g), `torch 2.13 wrote ${g}`);
    }
    assert.equal(a.alignment, '4096');
    const { format, object } = await read('aligned');
    assert.equal(format, 'zip');
    const tensors = tensorsOf(object);
    await assertSameAsTorch(tensors, a, dumpOf('aligned'));
    for (const [k, t] of tensors) assert.equal(t.byteOffset % 4096, 0, `${k} storage at ${t.byteOffset}`);
    const o = object as Map<string, unknown>;
    assert.deepEqual([o.get('device_cuda'), o.get('device_cpu')], a.devices);
  });

  it("storages whose location is 'cuda:0' read as on the CPU", async () => {
    await assertSameAsTorch(tensorsOf((await read('cuda')).object), report.cuda, dumpOf('cuda'));
  });

  it('_rebuild_tensor_v3 on an UntypedStorage: offset, strides and dtype as torch reads them', async () => {
    assert.ok(report.v3.globals!.includes('torch._utils._rebuild_tensor_v3') && report.v3.globals!.includes('torch.storage.UntypedStorage'));
    const tensors = tensorsOf((await read('v3')).object);
    await assertSameAsTorch(tensors, report.v3, dumpOf('v3'));
    const strided = tensors.get('strided')!;
    assert.deepEqual([strided.dtype, strided.storageOffset, strided.stride, strided.storageNumel], ['float32', 2, [1, 2], 12]);
    assert.equal(tensors.get('half')!.dtype, 'float16');
  });

  it('a uint16 tensor (v3, no loadable type) is refused with UNSUPPORTED_DTYPE', async () => {
    await assertRefused(file('uint16'), 'UNSUPPORTED_DTYPE', /torch\.uint16/);
  });

  it('the legacy container as torch 2.13 writes it: bit-exact', async () => {
    const { format, object } = await read('legacy');
    assert.equal(format, 'legacy');
    await assertSameAsTorch(tensorsOf(object), report.legacy, dumpOf('legacy'));
  });

  it('argparse.Namespace and Counter beside the weights: inert records, weights bit-exact', async () => {
    const t = report.trainer;
    const object = (await read('trainer')).object as Map<string, unknown>;
    await assertSameAsTorch(tensorsOf(object), t, dumpOf('trainer'));
    const args = object.get('args') as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(args), null);
    assert.deepEqual({ ...args, nested: Object.fromEntries(args.nested as Map<string, unknown>) }, t.args);
    const hub = object.get('message_hub') as Map<string, unknown>;
    assert.deepEqual(Object.fromEntries(hub.get('counts') as Map<string, number>), t.counts);
  });

  const modules: Array<[string, string]> = [
    ['module_main', '__main__.Net'],
    ['module_own', '__main__.OwnBlocks'],
    ['module_seq', 'torch.nn.modules.container.Sequential'],
    ['module_tv', 'torchvision.models.vgg.VGG'],
    ['module_legacy', '__main__.Net'],
  ];
  for (const [name, cls] of modules) {
    it(`torch.save(model) of ${cls}${name === 'module_legacy' ? ' (legacy container)' : ''} is refused with PICKLED_MODULE naming the class`, async () => {
      const escaped = cls.replace(/\./g, '\\.');
      await assertRefused(
        path.join(dir, `${name}.pth`),
        'PICKLED_MODULE',
        new RegExp(`pickled model of class '${escaped}'.*would run.*state_dict\\(\\)`),
      );
    });
  }

  it('a TorchScript archive reads as its state_dict, bit-exact (format torchscript)', async () => {
    assert.ok(report.script_net.entries!.some((e) => e.startsWith('script_net/code/__torch__')));
    assert.ok(report.script_net.entries!.includes('script_net/constants.pkl'));
    const { format, object } = await read('script_net');
    assert.equal(format, 'torchscript');
    assert.ok(object instanceof Map);
    await assertSameAsTorch(object as Map<string, TensorRef>, report.script_net, dumpOf('script_net'));
    assert.ok((object as Map<string, TensorRef>).has('features.1.num_batches_tracked'));
  });

  it("a scripted VGG-11-BN loads with vgg({ weights }): every tensor of stateDict() is torch.jit.load's", async () => {
    const s = report.script_vgg;
    const { format, object } = await read('script_vgg');
    assert.equal(format, 'torchscript');
    await assertSameAsTorch(object as Map<string, TensorRef>, s, dumpOf('script_vgg'));
    const model = await vgg({ weights: file('script_vgg') });
    try {
      assert.equal(model.arch, 'vgg11_bn');
      const names = torchvisionNames({ depth: 11, batchNorm: true });
      const dump = dumpOf('script_vgg');
      const state = await model.stateDict();
      assert.equal(state.length, Object.keys(s.tensors!).length);
      for (const t of state) {
        const d = s.tensors![names.get(t.name)!];
        assert.ok(d, `${t.name} is in the archive`);
        assert.ok(bytesOf(t.data).equals(dump.subarray(d.offset, d.offset + d.bytes)), `${t.name} differs from torch's`);
      }
    } finally {
      model.dispose();
    }
  });

  it("hostile TorchScript: data.pkl naming os.system, or TorchScript's pickle outside a TorchScript archive → FORBIDDEN_GLOBAL", async () => {
    await assertRefused(path.join(dir, 'script_os_system.pt'), 'FORBIDDEN_GLOBAL', /'os\.system'/);
    await assertRefused(path.join(dir, 'script_pickle_in_pth.pth'), 'FORBIDDEN_GLOBAL', /Refusing to load global '(__torch__|torch\.jit\._pickle)\./);
  });
});

// --- hostile pickles the new allow-list entries must still refuse (built byte by byte, no torch needed) ---
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const str = (s: string) => Buffer.concat([Buffer.from('X'), u32(Buffer.byteLength(s)), Buffer.from(s)]);
const op = (...codes: string[]) => Buffer.from(codes.join(''), 'latin1');
const G = (mod: string, name: string) => Buffer.from(`c${mod}\n${name}\n`);
const pickle = (...parts: Buffer[]) => Buffer.concat([Buffer.from([0x80, 2]), ...parts, op('.')]);
/** `cls()` by NEWOBJ, then BUILD with {key: value}. */
const built = (cls: Buffer, key: string, value: Buffer) => Buffer.concat([cls, op(')', '\x81', '}'), str(key), value, op('s', 'b')]);
const NAMESPACE = G('argparse', 'Namespace');

function refusedWith(pkl: Buffer, code: string, message?: RegExp, torchScript = false): void {
  assert.throws(
    () => unpickle(pkl, 0, { file: 'x.pth', torchScript }),
    (e: unknown) => e instanceof CheckpointError && e.code === code && (!message || message.test(e.message)),
  );
}

describe('torch 2.x allow-list entries stay safe', () => {
  it('a Namespace whose BUILD carries a REDUCE of os.system → FORBIDDEN_GLOBAL', () => {
    refusedWith(pickle(built(NAMESPACE, 'x', Buffer.concat([G('os', 'system'), str('true'), op('\x85', 'R')]))), 'FORBIDDEN_GLOBAL', /'os\.system'/);
  });

  it('a Namespace holding an instance of an unknown class → FORBIDDEN_GLOBAL naming it', () => {
    refusedWith(pickle(built(NAMESPACE, 'x', Buffer.concat([G('__main__', 'Evil'), op(')', '\x81')]))), 'FORBIDDEN_GLOBAL', /'__main__\.Evil'/);
  });

  it('an unknown class whose BUILD state is a module __dict__ → PICKLED_MODULE; any other state → FORBIDDEN_GLOBAL', () => {
    refusedWith(pickle(built(G('mymodels', 'Net'), '_modules', op('}'))), 'PICKLED_MODULE', /'mymodels\.Net'/);
    refusedWith(pickle(built(G('mymodels', 'Net'), 'weights', op('}'))), 'FORBIDDEN_GLOBAL', /'mymodels\.Net'/);
  });

  it('a Namespace state cannot reach Object.prototype, and a Namespace containing itself is refused', () => {
    const ns = unpickle(pickle(built(NAMESPACE, '__proto__', op('}'))), 0).value as Record<string, unknown>;
    assert.ok(Object.hasOwn(ns, '__proto__') && Object.getPrototypeOf(ns) === null);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    refusedWith(pickle(NAMESPACE, op(')', '\x81', 'q', '\x00', '}'), str('me'), op('h', '\x00', 's', 'b')), 'BAD_PICKLE', /contains itself/);
  });

  it('_rebuild_from_type_v2 only wraps tensor rebuilds into torch.Tensor or Parameter', () => {
    const fromType = (func: Buffer, type: Buffer) => pickle(G('torch._tensor', '_rebuild_from_type_v2'), op('('), func, type, op(')', 'N', 't', 'R'));
    refusedWith(fromType(G('torch._utils', '_rebuild_tensor_v2'), G('__main__', 'Sub')), 'FORBIDDEN_GLOBAL', /'__main__\.Sub'/);
    refusedWith(fromType(G('collections', 'OrderedDict'), G('torch', 'Tensor')), 'BAD_PICKLE', /may only wrap a tensor rebuild/);
    refusedWith(fromType(G('torch._utils', '_rebuild_tensor_v2'), G('collections', 'OrderedDict')), 'BAD_PICKLE', /torch\.Tensor or Parameter/);
  });

  it('__torch__ classes and torch.jit._pickle only in TorchScript archives; torch.Tensor is not callable', () => {
    refusedWith(pickle(built(G('__torch__', 'Net'), 'training', op('\x88'))), 'FORBIDDEN_GLOBAL', /'__torch__\.Net'/);
    refusedWith(pickle(G('torch.jit._pickle', 'build_intlist'), op(']', '\x85', 'R')), 'FORBIDDEN_GLOBAL');
    const obj = unpickle(pickle(built(G('__torch__', 'Net'), 'training', op('\x88'))), 0, { torchScript: true }).value;
    assert.equal((obj as { className: string }).className, '__torch__.Net');
    refusedWith(pickle(G('torch', 'Tensor'), op(')', 'R')), 'BAD_PICKLE', /cannot call/);
    refusedWith(pickle(G('os', 'system'), str('true'), op('\x85', 'R')), 'FORBIDDEN_GLOBAL', /'os\.system'/, true);
  });

  it('torch.device takes a device name only', () => {
    assert.equal(unpickle(pickle(G('torch', 'device'), str('cuda'), op('K', '\x01', '\x86', 'R')), 0).value, 'cuda:1');
    refusedWith(pickle(G('torch', 'device'), str('$(touch x)'), op('\x85', 'R')), 'BAD_PICKLE');
  });
});

// --- mmengine (OpenMMLab 2.x / mmpretrain) checkpoints: numpy values and HistoryBuffers beside the weights ---
const MM_SCRIPT = path.resolve(__dirname, 'fixtures', 'torch2', 'write_mmengine.py');

interface MmReport extends Archive {
  meta: Record<string, unknown>;
  runtime_info: Record<string, unknown>;
  loss: { max_length: number; log: number[]; count: number[] };
}

/** A numpy array record's elements, read as `T` from its kept bytes (little-endian, as torch 2.13 wrote them). */
function elements<T extends Float64Array | BigInt64Array>(a: NumpyArray, type: new (b: ArrayBuffer) => T): T {
  assert.ok(a.raw, 'the bytes are kept');
  return new type(a.raw.slice().buffer);
}

describe('an mmengine checkpoint as torch 2.13 and numpy write it (skipped without a torch 2.x CPU wheel on disk)', function () {
  this.timeout(120000);
  const run = torch2Python();
  const { dir, cleanup } = tempDir();
  let r: MmReport;
  const read = async () => (await readPth(path.join(dir, r.file))).object as Map<string, unknown>;
  after(cleanup);
  before(async function () {
    if (!run) return this.skip(); // no torch 2.x CPU wheel on this machine: nothing writes these files
    await run(`import runpy, sys; sys.argv = ${JSON.stringify([MM_SCRIPT, dir])}; runpy.run_path(sys.argv[0], run_name='__main__')`);
    r = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')).mmengine;
  });

  it('the state_dict is bit-exact and numpy scalars in meta and runtime_info are numbers (as torch.load(weights_only=False) gives)', async () => {
    for (const g of [
      'mmengine.logging.history_buffer.HistoryBuffer',
      'numpy.core.multiarray._reconstruct',
      'numpy.core.multiarray.scalar',
      'numpy.dtype',
    ]) {
      assert.ok(r.globals!.includes(g), `torch 2.13 with numpy ${String(r.numpy)} wrote ${g}`);
    }
    const object = await read();
    await assertSameAsTorch(tensorsOf(object.get('state_dict')), r, fs.readFileSync(path.join(dir, 'mmengine.bin')));
    const meta = Object.fromEntries(object.get('meta') as Map<string, unknown>);
    assert.deepEqual(meta, r.meta);
    assert.deepEqual([typeof meta.best_top1, typeof meta.seed, meta.lr_f32, meta.flag], ['number', 'number', Math.fround(0.1), true]);
    const hub = object.get('message_hub') as Map<string, unknown>;
    assert.deepEqual(Object.fromEntries(hub.get('runtime_info') as Map<string, unknown>), r.runtime_info);
  });

  it('a HistoryBuffer is an inert record: max_length and its numpy arrays (dtype, shape, bytes; bytes dropped over 1 MiB)', async () => {
    const logs = ((await read()).get('message_hub') as Map<string, unknown>).get('log_scalars') as Map<string, unknown>;
    const loss = logs.get('train/loss');
    assert.ok(loss instanceof InertObject);
    assert.equal(typeof loss, 'object', 'a record, not a function');
    assert.equal(loss.className, 'mmengine.logging.history_buffer.HistoryBuffer');
    assert.deepEqual([...loss.attributes.keys()], ['max_length', '_log_history', '_count_history']);
    assert.equal(loss.attributes.get('max_length'), r.loss.max_length);
    const log = loss.attributes.get('_log_history') as NumpyArray;
    const count = loss.attributes.get('_count_history') as NumpyArray;
    assert.deepEqual([log.dtype, log.dims, count.dtype, count.dims], ['<f8', [3], '<i8', [3]]);
    assert.deepEqual([...elements(log, Float64Array)], r.loss.log);
    assert.deepEqual([...elements(count, BigInt64Array)].map(Number), r.loss.count);
    assert.ok(!('shape' in log), 'nothing may take an array record for a tensor');
    const big = (logs.get('train/lr') as InertObject).attributes.get('_log_history') as NumpyArray;
    assert.deepEqual([big.dtype, big.dims, big.byteLength, big.raw], ['<f8', [140000], 140000 * 8, undefined]);
    assert.ok(MAX_INERT_BYTES < big.byteLength);
  });

  it('numpy values where a storage, persistent id or tensor belongs, and an array whose data is not its shape, are refused with a code', async () => {
    const refusals: Array<[string, string, RegExp]> = [
      ['np_storage', 'BAD_TENSOR', /rebuilt from a storage persistent id/],
      ['np_pid_type', 'BAD_PICKLE', /must name a torch\.\*Storage type but names the numpy dtype <f4/],
      ['np_pid', 'BAD_PICKLE', /Only storage persistent ids .* a numpy array/],
      ['np_parameter', 'BAD_PICKLE', /Parameter expects a tensor/],
      ['np_huge_shape', 'BAD_PICKLE', /declares 8796093022208 bytes of data but holds 8/],
    ];
    for (const [name, code, message] of refusals) await assertRefused(path.join(dir, `${name}.pth`), code, message);
  });
});

// --- the numpy and HistoryBuffer entries, byte by byte (numpy 2 names, byte orders, hostile states) ---
const i32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b;
};
const int = (n: number) => Buffer.concat([op('J'), i32(n)]);
const bin = (b: Buffer) => Buffer.concat([op('B'), u32(b.length), b]);
const tuple = (...items: Buffer[]) => Buffer.concat([op('('), ...items, op('t')]);
/** numpy.dtype(code, False, True) with BUILD state (3, order, None, None, None, -1, -1, 0), as numpy pickles it. */
const npDType = (code: string, order = '<') =>
  Buffer.concat([
    G('numpy', 'dtype'),
    str(code),
    op('\x89', '\x88', '\x87', 'R'),
    tuple(int(3), str(order), op('N', 'N', 'N'), int(-1), int(-1), int(0)),
    op('b'),
  ]);
const npScalar = (dtype: Buffer, data: Buffer, mod = 'numpy._core.multiarray') =>
  Buffer.concat([G(mod, 'scalar'), dtype, bin(data), op('\x86', 'R')]);
/** _reconstruct(ndarray, (0,), b'b'), then BUILD with (1, shape, dtype, False, data). */
const npArray = (shape: number[], dtype: Buffer, data: Buffer, mod = 'numpy._core.multiarray') =>
  Buffer.concat([
    G(mod, '_reconstruct'),
    G('numpy', 'ndarray'),
    op('K', '\x00', '\x85'),
    bin(Buffer.from('b')),
    op('\x87', 'R'),
    tuple(int(1), tuple(...shape.map(int)), dtype, op('\x89'), data),
    op('b'),
  ]);
const HISTORY = G('mmengine.logging.history_buffer', 'HistoryBuffer');
const f64 = (x: number, le = true) => {
  const b = Buffer.alloc(8);
  if (le) b.writeDoubleLE(x);
  else b.writeDoubleBE(x);
  return b;
};
const value = (pkl: Buffer) => unpickle(pkl, 0, { file: 'x.pth' }).value;

describe('numpy values and HistoryBuffer: inert data, never executed', () => {
  it('numpy scalars of either numpy name decode in their byte order; types not decoded stay records', () => {
    assert.equal(value(pickle(npScalar(npDType('f8'), f64(0.71)))), 0.71);
    assert.equal(value(pickle(npScalar(npDType('f8', '>'), f64(0.71, false), 'numpy.core.multiarray'))), 0.71);
    assert.equal(value(pickle(npScalar(npDType('i8'), Buffer.from([0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])))), -3);
    assert.equal(value(pickle(npScalar(npDType('u8'), Buffer.alloc(8, 0xff)))), 2n ** 64n - 1n);
    assert.equal(value(pickle(npScalar(npDType('f2'), Buffer.from([0x00, 0x3c])))), 1);
    assert.equal(value(pickle(npScalar(npDType('b1', '|'), Buffer.from([1])))), true);
    const c = value(pickle(npScalar(npDType('c16'), Buffer.concat([f64(1), f64(2)]))));
    assert.ok(c instanceof NumpyScalar && c.dtype === '<c16' && c.raw?.length === 16);
  });

  it('a numpy 2 ndarray keeps shape, dtype and bytes; an object array its items', () => {
    const a = value(pickle(npArray([2, 1], npDType('f8', '>'), bin(Buffer.concat([f64(1, false), f64(2, false)])))));
    assert.ok(a instanceof NumpyArray);
    assert.deepEqual([a.dtype, a.dims, a.byteLength, a.raw?.length], ['>f8', [2, 1], 16, 16]);
    const o = value(pickle(npArray([2], npDType('O8', '|'), Buffer.concat([op(']', '('), str('a'), op('K', '\x01', 'e')])))) as NumpyArray;
    assert.deepEqual([o.dtype, o.items], ['|O', ['a', 1]]);
  });

  it('a HistoryBuffer takes its state as attributes; a malformed or hostile state is refused', () => {
    const h = value(pickle(built(HISTORY, 'max_length', op('K', '\x05')))) as InertObject;
    assert.deepEqual([h.className, Object.fromEntries(h.attributes)], ['mmengine.logging.history_buffer.HistoryBuffer', { max_length: 5 }]);
    refusedWith(pickle(built(HISTORY, 'x', Buffer.concat([G('os', 'system'), str('true'), op('\x85', 'R')]))), 'FORBIDDEN_GLOBAL', /'os\.system'/);
    refusedWith(pickle(HISTORY, op(')', '\x81', 'q', '\x00', '}'), str('me'), op('h', '\x00', 's', 'b')), 'BAD_PICKLE', /contains itself/);
    refusedWith(pickle(HISTORY, op('K', '\x01', '\x85', '\x81')), 'BAD_PICKLE', /takes no positional arguments/);
    refusedWith(pickle(HISTORY, op(')', '\x81', ']', 'b')), 'BAD_PICKLE', /state must be a dict/);
  });

  it('records are not callable, not tensors, not storages; only plain ndarray; data must match the shape', () => {
    const arr = npArray([1], npDType('f8'), bin(f64(1)));
    refusedWith(pickle(arr, op(')', 'R')), 'BAD_PICKLE', /cannot call a numpy array/);
    refusedWith(pickle(npDType('f8'), op(')', 'R')), 'BAD_PICKLE', /cannot call the numpy dtype/);
    refusedWith(pickle(G('numpy', 'ndarray'), op(')', 'R')), 'BAD_PICKLE', /cannot call/);
    refusedWith(pickle(G('torch._utils', '_rebuild_parameter'), arr, op('\x85', 'R')), 'BAD_PICKLE', /expects a tensor/);
    const masked = Buffer.concat([
      G('numpy.core.multiarray', '_reconstruct'),
      G('numpy.ma.core', 'MaskedArray'),
      op('K', '\x00', '\x85'),
      bin(Buffer.from('b')),
      op('\x87', 'R'),
    ]);
    refusedWith(pickle(masked), 'FORBIDDEN_GLOBAL', /'numpy\.ma\.core\.MaskedArray'/);
    refusedWith(pickle(npArray([2 ** 20, 2 ** 20], npDType('f8'), bin(f64(1)))), 'BAD_PICKLE', /declares \d+ bytes of data but holds 8/);
    refusedWith(pickle(npArray([2 ** 30, 2 ** 30, 2 ** 30], npDType('f8'), bin(f64(1)))), 'LIMIT', /more than 2\^53 elements/);
    refusedWith(pickle(npArray([-1], npDType('f8'), bin(f64(1)))), 'BAD_PICKLE', /negative/);
    refusedWith(pickle(npArray([2], npDType('O8', '|'), op(']'))), 'BAD_PICKLE', /object array of 2 elements/);
    refusedWith(pickle(npScalar(npDType('f8'), Buffer.alloc(4))), 'BAD_PICKLE', /needs 8 bytes but received 4/);
    refusedWith(pickle(G('numpy', 'dtype'), str('os.system'), op('\x85', 'R')), 'BAD_PICKLE', /type code/);
    refusedWith(pickle(npDType('f8'), tuple(int(3), str('<')), op('b')), 'BAD_PICKLE', /built twice/);
  });

  it('a state_dict of numpy arrays is not taken for tensors by the layout', () => {
    const sd = value(pickle(op('}'), str('features.0.weight'), npArray([1], npDType('f8'), bin(f64(1))), op('s')));
    assert.throws(
      () => interpretCheckpoint(sd, 'x.pth'),
      (e: unknown) => e instanceof CheckpointError && e.code === 'UNKNOWN_LAYOUT' && /is not a tensor/.test(e.message),
    );
  });
});
