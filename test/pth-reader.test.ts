// Reader + layout against PyTorch as the oracle: torch.save writes the files
// (legacy and zip), Python reports each tensor's CRC-32 after converting to
// float32/int64; we read, materialize and compare.
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { python, tempDir } from './helpers/python';
import { materialize, readPth, TensorRef } from '../src/weights/pth';
import { checkAgainst, expectedShapes, interpretCheckpoint } from '../src/weights/layout';
import { ARCHITECTURES, parseArch } from '../src/arch';
import { pyAttributes, unpickle } from '../src/weights/pickle';
import { pythonCode } from './helpers/python';

const SCRIPT = path.join(__dirname, 'fixtures', 'make_checkpoints.py');

interface Truth {
  shape: number[];
  dtype: string;
  crc: number;
}
interface Report {
  keys: string[];
  tensors: Record<string, Truth>;
  canonical?: Record<string, Truth>;
}

function crcOf(a: Float32Array | BigInt64Array): number {
  return zlib.crc32(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)) >>> 0;
}

async function assertSameTensor(name: string, ref: unknown, truth: Truth): Promise<void> {
  assert.ok(ref instanceof TensorRef, `${name} is a TensorRef`);
  assert.deepEqual(ref.shape, truth.shape, `${name} shape`);
  const data = await materialize(ref);
  const isFloat = /float|half/.test(truth.dtype);
  assert.equal(data instanceof Float32Array, isFloat, `${name} converted type`);
  assert.equal(crcOf(data), truth.crc, `${name} values differ from PyTorch`);
}

describe('pth-reader: dtypes, views and both containers', function () {
  const tmp = tempDir();
  let report: Report;
  before(async () => {
    report = JSON.parse(await python(SCRIPT, ['dtypes', tmp.dir]));
  });
  after(() => tmp.cleanup());

  for (const name of ['legacy', 'zip', 'bigendian']) {
    it(`reads every tensor of ${name}.pth bit-exactly`, async () => {
      const { format, object } = await readPth(path.join(tmp.dir, `${name}.pth`));
      assert.equal(format, name === 'legacy' ? 'legacy' : 'zip');
      assert.ok(object instanceof Map);
      assert.deepEqual([...object.keys()], report.keys);
      for (const k of report.keys) await assertSameTensor(k, object.get(k), report.tensors[k]);
      const ref = object.get('f16') as TensorRef;
      assert.equal(ref.dtype, 'float16');
      assert.equal(ref.bigEndian, name === 'bigendian');
      assert.equal(ref.path, path.join(tmp.dir, `${name}.pth`));
    });
  }

  it('keeps views on a shared storage as offsets, not copies', async () => {
    const { object } = (await readPth(path.join(tmp.dir, 'zip.pth'))) as { object: Map<string, TensorRef> };
    const t = object.get('transposed')!;
    const s = object.get('slice_offset')!;
    assert.equal(t.storageKey, s.storageKey);
    assert.equal(t.byteOffset, s.byteOffset);
    assert.equal(s.storageOffset, 10 * 96 + 5);
    assert.deepEqual(s.stride, [96, 1]);
    assert.deepEqual(t.stride, [1, 96]);
    assert.deepEqual(object.get('expanded')!.stride, [0, 1]);
  });
});

describe('pth-reader + layout: the 8 mmcls variants (legacy and zip)', function () {
  for (const arch of ARCHITECTURES) {
    it(`${arch}: arch, classes, canonical keys and every value`, async () => {
      const tmp = tempDir();
      try {
        const report: Report = JSON.parse(await python(SCRIPT, ['variant', tmp.dir, arch, '10', 'mmcls']));
        for (const fmt of ['legacy', 'zip'] as const) {
          const file = path.join(tmp.dir, `${fmt}.pth`);
          const read = await readPth(file);
          assert.equal(read.format, fmt);
          const ck = interpretCheckpoint<TensorRef>(read.object, file);
          assert.deepEqual(ck.arch, parseArch(arch));
          assert.equal(ck.layout, 'mmcls');
          assert.equal(ck.numClasses, 10);
          assert.deepEqual(
            ck.labels,
            Array.from({ length: 10 }, (_, i) => `class_${i}`),
          );
          assert.equal(ck.meta?.mmcv_version, '1.3.0');
          assert.equal(ck.meta?.epoch, 100);
          assert.equal(ck.meta?.lr, 0.01);
          assert.match(String(ck.meta?.config), /ImageClassifier/);
          const expected = expectedShapes(ck.arch, 10);
          assert.deepEqual(
            [...ck.tensors.keys()],
            expected.map((e) => e.name),
            'canonical order',
          );
          const md = pyAttributes((read.object as Map<string, Map<string, unknown>>).get('state_dict')!)?.get('_metadata');
          assert.ok(md instanceof Map && md.has('backbone'), 'OrderedDict _metadata arrives through BUILD');
          const check = checkAgainst(expected, ck.tensors, { strict: true });
          assert.ok(check.ok, JSON.stringify(check));
          for (const [name, ref] of ck.tensors) await assertSameTensor(`${fmt} ${name}`, ref, report.tensors[`backbone.${name}`]);
        }
      } finally {
        tmp.cleanup();
      }
    });
  }
});

describe('pth-reader + layout: torchvision layout', function () {
  for (const [arch, classes, fmt] of [
    ['vgg16_bn', 10, 'legacy'],
    ['vgg16', 1000, 'zip'],
  ] as const) {
    it(`${arch} (${classes} classes, torchvision state_dict, ${fmt})`, async () => {
      const tmp = tempDir();
      try {
        const report: Report = JSON.parse(await python(SCRIPT, ['variant', tmp.dir, arch, String(classes), 'torchvision']));
        const file = path.join(tmp.dir, `${fmt}.pth`);
        const ck = interpretCheckpoint<TensorRef>((await readPth(file)).object, file);
        assert.equal(ck.layout, 'torchvision');
        assert.deepEqual(ck.arch, parseArch(arch));
        assert.equal(ck.numClasses, classes);
        assert.equal(ck.labels, undefined);
        const expected = expectedShapes(ck.arch, classes);
        assert.deepEqual(
          [...ck.tensors.keys()],
          expected.map((e) => e.name),
        );
        assert.ok(checkAgainst(expected, ck.tensors, { strict: true }).ok);
        for (const [name, ref] of ck.tensors) await assertSameTensor(name, ref, report.canonical![name]);
      } finally {
        tmp.cleanup();
      }
    });
  }
});

// Plain values pickled by Python itself with every protocol; both sides are
// normalised to the same JSON shape (tuples and lists alike, sets sorted).
const PROTOCOLS = `
import sys, json, pickle, collections
obj = collections.OrderedDict([
  ('ints', [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31 - 1, 2**31, -2**31 - 1, 2**53, -2**53, 2**64 + 7, -2**70]),
  ('floats', [0.0, -1.5, 0.1, 1e300, -2.5e-310, 3.0]),
  ('text', ['', 'plain', 'naïve ☃ 𝄞', 'back\\\\slash\\nnew line', 'x' * 300]),
  ('bytes', [b'', b'\\x00\\xffabc', b'y' * 300]),
  ('tuple', (1, (2, 3), ())), ('list', [[], [None, True, False]]),
  ('dict', {'a': {'b': {}}, 'c': [1]}), ('set', {3, 1, 2}), ('frozenset', frozenset(['q'])),
  ('shared', None),
])
inner = [1, 2]
obj['shared'] = [inner, inner]
def norm(v):
    if isinstance(v, bool) or v is None: return v
    if isinstance(v, int): return v if abs(v) < 2**53 else {'big': str(v)}
    if isinstance(v, float): return v
    if isinstance(v, str): return v
    if isinstance(v, bytes): return {'bytes': v.hex()}
    if isinstance(v, (list, tuple)): return [norm(x) for x in v]
    if isinstance(v, (set, frozenset)): return {'set': sorted(norm(x) for x in v)}
    if isinstance(v, dict): return {'dict': [[k, norm(x)] for k, x in v.items()]}
    raise TypeError(type(v))
print(json.dumps({'expected': norm(obj), 'pickles': {p: pickle.dumps(obj, protocol=p).hex() for p in range(6)}}))
`;

function norm(v: unknown): unknown {
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
  if (typeof v === 'bigint') return { big: v.toString() };
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString('hex') };
  if (Array.isArray(v)) return v.map(norm);
  if (v instanceof Set) return { set: [...v].map(norm).sort() };
  if (v instanceof Map) return { dict: [...v].map(([k, x]) => [k, norm(x)]) };
  throw new TypeError(String(v));
}

describe('pickle: plain values from Python with protocols 0-5', function () {
  it('decodes every protocol exactly like Python', async () => {
    const { expected, pickles } = JSON.parse(await pythonCode(PROTOCOLS)) as { expected: unknown; pickles: Record<string, string> };
    for (const [p, hex] of Object.entries(pickles)) {
      const buf = Buffer.from(hex, 'hex');
      const { value, end } = unpickle(buf, 0, { file: `protocol-${p}.pkl` });
      assert.equal(end, buf.length, `protocol ${p} consumed`);
      assert.deepEqual(norm(value), expected, `protocol ${p}`);
      const shared = (value as Map<string, unknown[]>).get('shared')!;
      assert.equal(shared[0], shared[1], `protocol ${p} keeps memo sharing`);
    }
  });
});
