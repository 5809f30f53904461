// safetensors against an oracle written from the format's own description
// (test/fixtures/safetensors_reader.py: struct + json + torch, not the
// safetensors package). Python writes files of known values and says what
// loading them must give (torch's .float() / .long()); we read the header,
// materialize in JS and load into a real model natively, and compare bit for
// bit. Our writer's files are read back by the Python reader (torch.frombuffer).
// Hostile headers are built byte by byte here, each refused with its code.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FileTensorSource, NamedTensor } from '../src/binding';
import { CheckpointError, vgg } from '../src';
import { readWeights } from '../src/weights';
import { materialize } from '../src/weights/pth';
import { readSafetensors, writeSafetensors } from '../src/weights/safetensors';
import { python, tempDir } from './helpers/python';

const ORACLE = path.join(__dirname, 'fixtures', 'safetensors_reader.py');

interface Expected {
  name: string;
  dtype: string;
  shape: number[];
  /** torch's .float() of a float tensor, little-endian float32 bytes. */
  float32?: string;
  /** torch's .long() of an integer or bool tensor. */
  int64?: string[];
}
interface Known {
  every: { headerBytes: number; tensors: Expected[] };
  vgg: Expected[];
}
interface PythonRead {
  headerBytes: number;
  metadata: Record<string, string>;
  tensors: Array<{ name: string; dtype: string; shape: number[]; hex: string }>;
}

const hex = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');
const contiguous = (shape: number[]) => shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * Math.max(b, 1), 1));

/** Bits equal, except that any NaN matches any NaN: JS numbers do not keep a NaN's payload. */
function assertSameFloats(got: Float32Array, expectedHex: string, what: string): void {
  const buf = Buffer.from(expectedHex, 'hex');
  const want = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const gotBits = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const wantBits = new Uint32Array(want.buffer, want.byteOffset, want.length);
  assert.equal(got.length, want.length, `${what}: element count`);
  for (let i = 0; i < got.length; i++) {
    if (Number.isNaN(want[i])) assert.ok(Number.isNaN(got[i]), `${what}[${i}] should be NaN`);
    else assert.equal(gotBits[i], wantBits[i], `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

/** The safetensors layout by hand: u64 length, the header text, the buffer. */
function stFile(header: string | object, buffer: Buffer = Buffer.alloc(0), declared?: bigint): Buffer {
  const text = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(declared ?? BigInt(text.length));
  return Buffer.concat([len, text, buffer]);
}
const f32 = (name: string, shape: number[], begin: number, end: number) => ({ [name]: { dtype: 'F32', shape, data_offsets: [begin, end] } });

describe('safetensors', function () {
  this.timeout(60000);
  const tmp = tempDir('vgg-safetensors-');
  let known: Known;
  before(async () => {
    known = JSON.parse(await python(ORACLE, ['known', tmp.dir]));
  });
  after(() => tmp.cleanup());

  describe('reader, on files Python lays out from the format description', () => {
    it('every dtype: names in data order, dtype, shape, contiguous strides, offsets inside the buffer, metadata', async () => {
      const file = path.join(tmp.dir, 'every.safetensors');
      const { tensors, metadata } = await readSafetensors(file);
      assert.deepEqual(metadata, { format: 'pt', note: 'ünï "q" \\ x' });
      assert.deepEqual(
        [...tensors.keys()],
        known.every.tensors.map((t) => t.name),
      );
      const storage: Record<string, string> = { F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16', I64: 'int64' };
      Object.assign(storage, { I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool' });
      let at = 8 + known.every.headerBytes;
      for (const want of known.every.tensors) {
        const t = tensors.get(want.name) as FileTensorSource;
        const numel = want.shape.reduce((a, b) => a * b, 1);
        assert.deepEqual(
          {
            kind: t.kind,
            path: t.path,
            dtype: t.dtype,
            shape: t.shape,
            stride: t.stride,
            storageOffset: t.storageOffset,
            storageNumel: t.storageNumel,
          },
          {
            kind: 'file',
            path: file,
            dtype: storage[want.dtype],
            shape: want.shape,
            stride: contiguous(want.shape),
            storageOffset: 0,
            storageNumel: numel,
          },
          want.name,
        );
        assert.ok(t.byteOffset >= at, `${want.name} starts after the tensor before it`);
        at = t.byteOffset;
      }
      assert.equal(tensors.get('scalar')?.shape.length, 0);
    });

    it("every dtype's values, read in JS, equal torch's .float() / .long() bit for bit", async () => {
      const { tensors } = await readSafetensors(path.join(tmp.dir, 'every.safetensors'));
      for (const want of known.every.tensors) {
        const data = await materialize(tensors.get(want.name) as FileTensorSource);
        if (want.float32 !== undefined) {
          assert.ok(data instanceof Float32Array, `${want.name} is float`);
          assertSameFloats(data, want.float32, want.name);
        } else {
          assert.deepEqual([...(data as BigInt64Array)].map(String), want.int64, want.name);
        }
      }
    });

    it('loaded natively into a vgg11_bn, F16/BF16/F64/F32/I32/U8/I8/BOOL/I64 equal torch bit for bit (NaN payloads too)', async () => {
      const { tensors } = await readSafetensors(path.join(tmp.dir, 'vgg.safetensors'));
      const m = await vgg('vgg11_bn', { numClasses: 0 });
      try {
        await m.loadStateDict(
          [...tensors].map(([name, tensor]) => ({ name, tensor })),
          { strict: false },
        );
        const state = new Map((await m.stateDict()).map((t) => [t.name, t]));
        for (const want of known.vgg) {
          const got = state.get(want.name) as NamedTensor;
          assert.deepEqual(got.shape, want.shape, want.name);
          if (want.float32 !== undefined) assert.equal(hex(got.data), want.float32, `${want.name} (${want.dtype})`);
          else assert.deepEqual([...(got.data as BigInt64Array)].map(String), want.int64, want.name);
        }
        // The model's own arrays, as model.save() will hand them over, written and read back by Python.
        const layer = [...state.values()].filter((t) => t.name.startsWith('features.0.'));
        const file = path.join(tmp.dir, 'from-model.safetensors');
        await writeSafetensors(file, layer);
        const read: PythonRead = JSON.parse(await python(ORACLE, ['read', file]));
        assert.deepEqual(
          read.tensors.map((t) => [t.name, t.dtype, t.shape, t.hex]),
          layer.map((t) => [t.name, t.dtype === 'int64' ? 'I64' : 'F32', t.shape, hex(t.data)]),
        );
      } finally {
        m.dispose();
      }
    });

    it('accepts a header padded with spaces, and an empty file of "{}"', async () => {
      const padded = path.join(tmp.dir, 'padded.safetensors');
      fs.writeFileSync(padded, stFile(`${JSON.stringify(f32('a', [1], 0, 4))}       `, Buffer.from(new Float32Array([1.5]).buffer)));
      const read = await readSafetensors(padded);
      assert.deepEqual(Array.from((await materialize(read.tensors.get('a') as FileTensorSource)) as Float32Array), [1.5]);
      const empty = path.join(tmp.dir, 'empty.safetensors');
      fs.writeFileSync(empty, stFile('{}'));
      const none = await readSafetensors(empty);
      assert.equal(none.tensors.size, 0);
      assert.deepEqual(none.metadata, {});
    });

    it("a tensor named '__proto__' is a name like any other; nothing reaches Object.prototype", async () => {
      const file = path.join(tmp.dir, 'proto.safetensors');
      const header = `{"__metadata__":{"__proto__":"m"},"__proto__":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`;
      fs.writeFileSync(file, stFile(header, Buffer.alloc(4)));
      const { tensors, metadata } = await readSafetensors(file);
      assert.deepEqual([...tensors.keys()], ['__proto__']);
      assert.equal(Object.getOwnPropertyDescriptor(metadata, '__proto__')?.value, 'm');
      assert.equal(({} as Record<string, unknown>).dtype, undefined);
    });
  });

  describe('writer, read back by the Python reader (torch.frombuffer)', () => {
    const nan = new Float32Array(new Uint32Array([0x7fc00001, 0xffbfffff]).buffer);
    const tensors: NamedTensor[] = [
      {
        name: 'features.0.conv.weight',
        dtype: 'float32',
        shape: [2, 3],
        data: new Float32Array([0, -0, 1e-45, 3.4028234663852886e38, -Infinity, 0.1]),
      },
      { name: 'nan', dtype: 'float32', shape: [2], data: nan },
      { name: 'features.0.bn.num_batches_tracked', dtype: 'int64', shape: [], data: new BigInt64Array([-(2n ** 63n)]) },
      { name: '10', dtype: 'int64', shape: [3], data: new BigInt64Array([2n ** 63n - 1n, 0n, -1n]) },
      { name: '2', dtype: 'float32', shape: [0, 4], data: new Float32Array(0) },
      { name: 'ü "quoted" \\', dtype: 'float32', shape: [1, 1, 1], data: new Float32Array([7]) },
    ];

    it('every tensor bit-exact, in the given order with contiguous offsets; metadata equal; header padded to 8 bytes', async () => {
      const file = path.join(tmp.dir, 'ours.safetensors');
      const metadata = { format: 'pt', arch: 'vgg11', ключ: 'значение "x"' };
      await writeSafetensors(file, tensors, metadata);
      const read: PythonRead = JSON.parse(await python(ORACLE, ['read', file]));
      assert.deepEqual(read.metadata, metadata);
      assert.equal(read.headerBytes % 8, 0);
      assert.deepEqual(
        read.tensors.map((t) => [t.name, t.dtype, t.shape, t.hex]),
        tensors.map((t) => [t.name, t.dtype === 'float32' ? 'F32' : 'I64', t.shape, hex(t.data)]),
      );
      const bytes = fs.readFileSync(file);
      const headerText = bytes.subarray(8, 8 + read.headerBytes).toString('utf8');
      assert.match(headerText, /^\{"__metadata__":.*"features\.0\.conv\.weight".*"nan".*"features\.0\.bn\.num_batches_tracked".*"10".*"2"/);
      assert.match(headerText, /\} *$/);
      assert.deepEqual(
        fs.readdirSync(tmp.dir).filter((f) => f.includes('.tmp-')),
        [],
      );
    });

    it('leaves __metadata__ out when none is given; a data view (byteOffset) writes only its own elements', async () => {
      const file = path.join(tmp.dir, 'view.safetensors');
      const backing = new Float32Array([9, 1, 2, 3, 9]);
      await writeSafetensors(file, [{ name: 'v', dtype: 'float32', shape: [3], data: backing.subarray(1, 4) }]);
      const read: PythonRead = JSON.parse(await python(ORACLE, ['read', file]));
      assert.deepEqual(read.metadata, {});
      assert.ok(!fs.readFileSync(file).includes('__metadata__'));
      assert.equal(read.tensors[0].hex, hex(new Float32Array([1, 2, 3])));
    });

    it('refuses what the format cannot hold with BAD_VALUE, writing nothing', async () => {
      const file = path.join(tmp.dir, 'refused.safetensors');
      const ok = tensors[0];
      const cases: Array<[string, unknown[], unknown]> = [
        ['a number as metadata value', [ok], { epoch: 3 }],
        ['metadata that is an array', [ok], ['a']],
        ['dtype float16', [{ ...ok, dtype: 'float16' }], undefined],
        ['Float32Array for int64', [{ ...ok, dtype: 'int64' }], undefined],
        ['element count not the shape', [{ ...ok, shape: [7] }], undefined],
        ['negative size', [{ ...ok, shape: [-1] }], undefined],
        ['a name twice', [ok, ok], undefined],
        ['a tensor named __metadata__', [{ ...ok, name: '__metadata__' }], undefined],
        ['a name that is not a string', [{ ...ok, name: 5 }], undefined],
      ];
      for (const [what, list, meta] of cases) {
        await assert.rejects(
          writeSafetensors(file, list as NamedTensor[], meta as Record<string, string>),
          { name: 'CheckpointError', code: 'BAD_VALUE' },
          what,
        );
      }
      await assert.rejects(writeSafetensors(file, [ok], { epoch: 3 } as never), /metadata 'epoch' must be a string/);
      assert.equal(fs.existsSync(file), false);
      await assert.rejects(writeSafetensors(path.join(tmp.dir, 'no', 'such', 'x.safetensors'), [ok]), { code: 'ENOENT' });
      await assert.rejects(writeSafetensors('' as string, [ok]), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    });
  });

  describe('hostile files, each refused with its code', () => {
    let n = 0;
    const write = (bytes: Buffer) => {
      const f = path.join(tmp.dir, `hostile-${n++}.safetensors`);
      fs.writeFileSync(f, bytes);
      return f;
    };
    const refuses = (what: string, bytes: () => Buffer, code: string, message?: RegExp) =>
      it(`${what} → ${code}`, async () => {
        const file = write(bytes());
        const err = await readSafetensors(file).then(
          () => assert.fail('accepted'),
          (e: Error & { code?: string; file?: string }) => e,
        );
        assert.equal(err.name, 'CheckpointError', err.stack);
        assert.equal(err.code, code, err.message);
        assert.equal(err.file, file);
        assert.ok(err.message.includes(file), `the message names the file: ${err.message}`);
        if (message) assert.match(err.message, message);
      });
    const four = Buffer.alloc(4);
    const entry = (e: object) => stFile({ t: e }, four);

    refuses('an empty file', () => Buffer.alloc(0), 'TRUNCATED');
    refuses('7 bytes', () => Buffer.alloc(7), 'TRUNCATED', /8-byte header length but the file has 7 bytes/);
    refuses('a header length of 100_000_001', () => stFile('{}', Buffer.alloc(0), 100_000_001n), 'LIMIT', /100000001 bytes; at most 100000000/);
    refuses('a header length of 2^64-1', () => stFile('{}', Buffer.alloc(0), 2n ** 64n - 1n), 'LIMIT');
    refuses(
      'a header length past the end of the file',
      () => stFile('{}', Buffer.alloc(0), 99_999_999n),
      'BAD_HEADER',
      /declares 99999999 bytes but only 2 follow/,
    );
    refuses(
      'a header of invalid UTF-8 bytes',
      () => Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([0x7b, 0xc3, 0x28, 0x7d])]),
      'BAD_HEADER',
      /UTF-8/,
    );
    refuses('a header that is not JSON', () => stFile('{"t": '), 'BAD_HEADER', /not JSON/);
    refuses('a header that is a JSON array', () => stFile('[]'), 'BAD_HEADER', /must be a JSON object but is an array/);
    refuses('a header that is null', () => stFile('null'), 'BAD_HEADER');
    refuses('an entry that is a string', () => stFile({ t: 'F32' }), 'BAD_HEADER', /Tensor 't': expected an object/);
    refuses(
      'an entry without dtype',
      () => entry({ shape: [1], data_offsets: [0, 4] }),
      'BAD_HEADER',
      /Tensor 't': dtype must be a string but is undefined/,
    );
    refuses('a dtype that is a number', () => entry({ dtype: 4, shape: [1], data_offsets: [0, 4] }), 'BAD_HEADER');
    refuses('no shape', () => entry({ dtype: 'F32', data_offsets: [0, 4] }), 'BAD_HEADER', /shape must be an array/);
    refuses('a negative dimension', () => entry({ dtype: 'F32', shape: [-1], data_offsets: [0, 4] }), 'BAD_HEADER', /\[-1\]/);
    refuses('a fractional dimension', () => entry({ dtype: 'F32', shape: [1.5], data_offsets: [0, 4] }), 'BAD_HEADER');
    refuses('a dimension as a string', () => entry({ dtype: 'F32', shape: ['1'], data_offsets: [0, 4] }), 'BAD_HEADER');
    refuses('three data_offsets', () => entry({ dtype: 'F32', shape: [1], data_offsets: [0, 4, 8] }), 'BAD_HEADER', /\[begin, end\]/);
    refuses('a negative offset', () => entry({ dtype: 'F32', shape: [1], data_offsets: [-4, 0] }), 'BAD_HEADER');
    refuses('a fractional offset', () => entry({ dtype: 'F32', shape: [1], data_offsets: [0, 4.5] }), 'BAD_HEADER');
    refuses('offsets past 2^53', () => entry({ dtype: 'F32', shape: [1], data_offsets: [0, 2 ** 60] }), 'BAD_HEADER');
    refuses('__metadata__ a string', () => stFile({ __metadata__: 'x', ...f32('t', [1], 0, 4) }, four), 'BAD_HEADER', /__metadata__/);
    refuses(
      '__metadata__ with a number',
      () => stFile({ __metadata__: { epoch: 3 }, ...f32('t', [1], 0, 4) }, four),
      'BAD_HEADER',
      /'epoch' must be a string/,
    );
    refuses(
      'a tensor name twice',
      () => stFile('{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', Buffer.alloc(8)),
      'BAD_HEADER',
      /tensor name 't' twice/,
    );
    refuses(
      'a tensor name twice, once escaped',
      () =>
        stFile(
          '{"ab":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"\\u0061b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
          Buffer.alloc(8),
        ),
      'BAD_HEADER',
    );
    refuses('a key twice inside an entry', () => stFile('{"t":{"dtype":"F32","dtype":"F64","shape":[1],"data_offsets":[0,4]}}', four), 'BAD_HEADER');
    refuses(
      'F8_E4M3',
      () => stFile({ 'fp8.w': { dtype: 'F8_E4M3', shape: [4], data_offsets: [0, 4] } }, four),
      'UNSUPPORTED_DTYPE',
      /'fp8\.w' has dtype "F8_E4M3"/,
    );
    refuses('F8_E5M2', () => stFile({ t: { dtype: 'F8_E5M2', shape: [4], data_offsets: [0, 4] } }, four), 'UNSUPPORTED_DTYPE');
    refuses('U32', () => stFile({ t: { dtype: 'U32', shape: [1], data_offsets: [0, 4] } }, four), 'UNSUPPORTED_DTYPE');
    refuses(
      'an unknown dtype',
      () => stFile({ t: { dtype: 'toString', shape: [1], data_offsets: [0, 4] } }, four),
      'UNSUPPORTED_DTYPE',
      /does not define/,
    );
    refuses('begin after end', () => stFile(f32('t', [0], 4, 0), four), 'BAD_OFFSETS', /begin is after end/);
    refuses('end past the buffer', () => stFile(f32('t', [2], 0, 8), four), 'BAD_OFFSETS', /\[0, 8\] but the data buffer holds 4 bytes/);
    refuses(
      'overlapping ranges',
      () => stFile({ ...f32('a', [2], 0, 8), ...f32('b', [2], 4, 12) }, Buffer.alloc(12)),
      'BAD_OFFSETS',
      /'b'.*overlaps/,
    );
    refuses('two tensors on the same bytes', () => stFile({ ...f32('a', [1], 0, 4), ...f32('b', [1], 0, 4) }, four), 'BAD_OFFSETS', /overlaps/);
    refuses('a hole between ranges', () => stFile({ ...f32('a', [1], 0, 4), ...f32('b', [1], 8, 12) }, Buffer.alloc(12)), 'BAD_OFFSETS', /'b'.*hole/);
    refuses('a buffer not starting at 0', () => stFile(f32('t', [1], 4, 8), Buffer.alloc(8)), 'BAD_OFFSETS', /hole/);
    refuses(
      'bytes after the last tensor',
      () => stFile(f32('t', [1], 0, 4), Buffer.alloc(8)),
      'BAD_OFFSETS',
      /holds 8 bytes but the tensors cover 4/,
    );
    refuses(
      'a size that is not shape x dtype',
      () => stFile(f32('t', [2], 0, 4), four),
      'BAD_TENSOR',
      /'t' of shape \[2\] with 4-byte elements needs 8 bytes .* hold 4/,
    );
    refuses('sizes multiplying past 2^53', () => stFile(f32('t', [2 ** 31, 2 ** 31, 2 ** 31], 0, 4), four), 'BAD_TENSOR', /past 2\^53/);
    refuses('a zero-size tensor with sizes past 2^53', () => stFile(f32('t', [0, 2 ** 40, 2 ** 40], 0, 0)), 'BAD_TENSOR');

    it('a missing file → UNREADABLE, worded as the weights door words it', async () => {
      const file = path.join(tmp.dir, 'missing.safetensors');
      await assert.rejects(readSafetensors(file), { name: 'CheckpointError', code: 'UNREADABLE', message: `weights file not found: ${file}` });
    });
    it('a folder → UNREADABLE; a path that is not a string → TypeError', async () => {
      await assert.rejects(readSafetensors(tmp.dir), { name: 'CheckpointError', code: 'UNREADABLE' });
      await assert.rejects(readSafetensors(3 as never), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    });
  });
});

describe('safetensors beside the other formats', function () {
  it('a file of none of the formats is UNKNOWN_FORMAT, naming what it looks like (GGUF, HDF5, JSON)', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const cases: Array<[string, Buffer, RegExp]> = [
        ['m.gguf', Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(20)]), /a GGUF file/],
        ['m.h5', Buffer.concat([Buffer.from('\x89HDF\r\n\x1a\n', 'latin1'), Buffer.alloc(20)]), /an HDF5 file/],
        ['config.json', Buffer.from('{"architectures": ["VGG"]}'), /a JSON file/],
      ];
      for (const [name, bytes, what] of cases) {
        const file = path.join(dir, name);
        fs.writeFileSync(file, bytes);
        await assert.rejects(readWeights(file), (e: unknown) => e instanceof CheckpointError && e.code === 'UNKNOWN_FORMAT' && what.test(e.message));
      }
    } finally {
      cleanup();
    }
  });

  it('a header length whose low byte is 0x80 (pickle PROTO) is still read as safetensors by readWeights', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = path.join(dir, 'proto.safetensors');
      const t: NamedTensor = { name: 'x', dtype: 'float32', shape: [2], data: new Float32Array([1, 2]) };
      let low = -1;
      for (let pad = 0; pad < 300 && low !== 0x80; pad++) {
        await writeSafetensors(file, [t], { pad: 'p'.repeat(pad) });
        low = fs.readFileSync(file).readUInt8(0);
      }
      assert.equal(low, 0x80, 'no padding gave a header length ending in 0x80');
      // Found as safetensors (its one tensor is no VGG), not refused as a damaged pickle.
      await assert.rejects(readWeights(file), (e: unknown) => e instanceof CheckpointError && e.code === 'UNKNOWN_LAYOUT');
    } finally {
      cleanup();
    }
  });
});
