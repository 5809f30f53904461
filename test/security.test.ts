// The security suite (issue 13): hostile pickles, zip containers and ONNX
// external data, built byte by byte here (and by the onnx package for the
// models), each refused with its code — without running anything, without
// reading or writing outside its target, and within a stated allocation.
// The payloads would create MARKER if anything ran them.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { errorCode } from '../src/errors';
import { readOnnx } from '../src/weights/onnx';
import { unpickle } from '../src/weights/pickle';
import { readSafetensors } from '../src/weights/safetensors';
import { readAll } from './helpers/read-all';
import { tempDir } from './helpers/python';
import { securityLog } from './helpers/robustness-log';

/** Peak RSS a refusal may add: this multiple of the file's size, plus a fixed 96 MiB for the reader's own buffers. */
const ALLOC_MULTIPLE = 64;
const ALLOC_BASE = 96 * 1024 * 1024;

// --- a pickle assembler (opcodes as CPython's pickle.py names them) ---
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const str = (s: string) => Buffer.concat([Buffer.from('X'), u32(Buffer.byteLength(s)), Buffer.from(s)]); // BINUNICODE
const short = (s: string) => Buffer.concat([Buffer.from([0x8c, Buffer.byteLength(s)]), Buffer.from(s)]); // SHORT_BINUNICODE
const op = (...codes: (string | number)[]) => Buffer.from(codes.map((c) => (typeof c === 'string' ? c.charCodeAt(0) : c)));
const PROTO2 = Buffer.from([0x80, 2]);
const PROTO4 = Buffer.from([0x80, 4]);
const GLOBAL = (mod: string, name: string) => Buffer.from(`c${mod}\n${name}\n`);
const STACK_GLOBAL = (mod: string, name: string) => Buffer.concat([short(mod), short(name), op(0x93)]);
const MARK = op('(');
const TUPLE1 = op(0x85);
const REDUCE = op('R');
const STOP = op('.');

function routes(mod: string, name: string, arg: Buffer): Record<string, Buffer> {
  const G = GLOBAL(mod, name);
  return {
    'GLOBAL+REDUCE': Buffer.concat([PROTO2, G, arg, TUPLE1, REDUCE, STOP]),
    'STACK_GLOBAL+REDUCE': Buffer.concat([PROTO4, STACK_GLOBAL(mod, name), arg, TUPLE1, REDUCE, STOP]),
    INST: Buffer.concat([PROTO2, MARK, arg, Buffer.from(`i${mod}\n${name}\n`), STOP]),
    OBJ: Buffer.concat([PROTO2, MARK, G, arg, op('o'), STOP]),
    NEWOBJ: Buffer.concat([PROTO2, G, arg, TUPLE1, op(0x81), STOP]),
    NEWOBJ_EX: Buffer.concat([PROTO4, STACK_GLOBAL(mod, name), arg, TUPLE1, op('}', 0x92), STOP]),
    // BUILD on an allowed OrderedDict whose state reaches for the global.
    BUILD: Buffer.concat([PROTO2, GLOBAL('collections', 'OrderedDict'), op(')'), REDUCE, G, arg, TUPLE1, REDUCE, op('b'), STOP]),
  };
}

// --- a zip assembler: stored/deflated entries, names and offsets as given ---
interface RawEntry {
  name: string;
  data: Buffer;
  deflate?: boolean;
  /** Point the central record at another entry's local header (overlap). */
  sameOffsetAs?: number;
  /** Size to declare (zip bombs); default the real one. */
  declaredSize?: number;
}
function zip(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  const offsets: number[] = [];
  let at = 0;
  for (const e of entries) {
    const body = e.deflate ? zlib.deflateRawSync(e.data) : e.data;
    const name = Buffer.from(e.name);
    const size = e.declaredSize ?? e.data.length;
    const crc = zlib.crc32(e.data) >>> 0;
    const method = e.deflate ? 8 : 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const offset = e.sameOffsetAs !== undefined ? offsets[e.sameOffsetAs] : at;
    offsets.push(offset);
    if (e.sameOffsetAs === undefined) {
      parts.push(local, name, body);
      at += local.length + name.length + body.length;
    }
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(method, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(body.length, 20);
    c.writeUInt32LE(size, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(offset, 42);
    central.push(c, name);
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(at, 16);
  return Buffer.concat([...parts, cd, end]);
}
const torchZip = (pkl: Buffer, extra: RawEntry[] = []) =>
  zip([
    { name: 'archive/data.pkl', data: pkl },
    { name: 'archive/byteorder', data: Buffer.from('little') },
    ...extra,
    { name: 'archive/version', data: Buffer.from('3\n') },
  ]);

/** A legacy torch.save stream: magic, protocol, sys_info, then the object pickle and an empty key list. */
function legacy(pkl: Buffer): Buffer {
  const LONG_MAGIC = Buffer.concat([PROTO2, op(0x8a, 10), Buffer.from('6c fc 9c 46 f9 20 6a a8 50 19'.replace(/ /g, ''), 'hex'), STOP]);
  const proto = Buffer.concat([PROTO2, Buffer.from('M'), Buffer.from([0xe9, 0x03]), STOP]);
  const sysInfo = Buffer.concat([PROTO2, op('}'), STOP]);
  return Buffer.concat([LONG_MAGIC, proto, sysInfo, pkl, Buffer.concat([PROTO2, op(']'), STOP])]);
}

/** Runs `fn`, expects a refusal with one of `codes`, checks the allocation bound; returns the code. */
async function refused(fn: () => unknown, codes: readonly string[], fileSize: number): Promise<string> {
  const before = process.resourceUsage().maxRSS * 1024;
  let code: string | undefined;
  try {
    await fn();
  } catch (e) {
    code = errorCode(e);
    assert.ok(code, `an error without a code: ${(e as Error).stack}`);
  }
  assert.ok(code !== undefined, 'was accepted');
  assert.ok(codes.includes(code), `refused with ${code}, expected one of ${codes.join(', ')}`);
  const grew = process.resourceUsage().maxRSS * 1024 - before;
  assert.ok(grew <= ALLOC_BASE + ALLOC_MULTIPLE * fileSize, `peak RSS grew ${grew} bytes for a ${fileSize}-byte file`);
  return code;
}

describe('security suite', function () {
  const tmp = tempDir();
  const marker = path.join(tmp.dir, 'MARKER');
  const cmd = str(`touch ${marker}`);
  after(() => tmp.cleanup());
  let n = 0;
  const write = (ext: string, bytes: Buffer) => {
    const f = path.join(tmp.dir, `case-${n++}${ext}`);
    fs.writeFileSync(f, bytes);
    return f;
  };
  const check = (name: string, codes: readonly string[], make: () => { fn: () => unknown; size: number }) =>
    it(`${name} → ${codes.join('|')}`, async () => {
      const { fn, size } = make();
      securityLog.push({ name, code: await refused(fn, codes, size) });
    });

  const globals: Array<[string, string]> = [
    ['os', 'system'],
    ['posix', 'system'],
    ['nt', 'system'],
    ['subprocess', 'Popen'],
    ['subprocess', 'check_output'],
    ['builtins', 'eval'],
    ['builtins', 'exec'],
    ['builtins', 'getattr'],
    ['builtins', '__import__'],
    ['__builtin__', 'eval'],
    ['importlib', 'import_module'],
    ['pickle', 'loads'],
    ['torch', 'load'],
    ['torch.storage', '_load_from_bytes'],
    ['torch.jit', 'load'],
    ['torch._utils', '_rebuild_from_type_v2'],
  ];
  const FORBIDDEN = ['FORBIDDEN_GLOBAL', 'FORBIDDEN_OPCODE'] as const;
  for (const [mod, name] of globals) {
    for (const [route, pkl] of Object.entries(routes(mod, name, cmd))) {
      check(`pickle ${mod}.${name} via ${route}`, FORBIDDEN, () => ({ fn: () => unpickle(pkl, 0, { file: 'x' }), size: pkl.length }));
    }
    const [route, pkl] = Object.entries(routes(mod, name, cmd))[0];
    check(`zip .pth ${mod}.${name} via ${route}`, FORBIDDEN, () => {
      const f = write('.pth', torchZip(pkl));
      return { fn: () => readAll(f), size: fs.statSync(f).size };
    });
    check(`legacy .pth ${mod}.${name} via ${route}`, FORBIDDEN, () => {
      const f = write('.pth', legacy(pkl));
      return { fn: () => readAll(f), size: fs.statSync(f).size };
    });
  }

  it('BUILD cannot reach Object.prototype (__proto__ state on a dict)', () => {
    const pkl = Buffer.concat([
      PROTO2,
      GLOBAL('collections', 'OrderedDict'),
      op(')'),
      REDUCE,
      op('}'),
      str('__proto__'),
      op('}'),
      str('polluted'),
      op('K', 1, 's', 's', 'b'),
      STOP,
    ]);
    try {
      unpickle(pkl, 0, { file: 'x' });
    } catch (e) {
      assert.ok(errorCode(e), String(e));
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  // Persistent ids torch never writes, or storages the archive does not hold.
  const storagePid = (key: string, type = 'FloatStorage', kind = 'storage') =>
    Buffer.concat([PROTO2, MARK, str(kind), GLOBAL('torch', type), str(key), str('cpu'), op('K', 4, 't', 'Q'), STOP]);
  check('unknown persistent id kind', ['BAD_PICKLE', 'BAD_STORAGE', 'FORBIDDEN_GLOBAL'], () => {
    const f = write('.pth', torchZip(storagePid('0', 'FloatStorage', 'module')));
    return { fn: () => readAll(f), size: fs.statSync(f).size };
  });
  check('persistent id naming a storage the archive lacks', ['BAD_STORAGE', 'BAD_ZIP'], () => {
    const f = write('.pth', torchZip(storagePid('7')));
    return { fn: () => readAll(f), size: fs.statSync(f).size };
  });
  check('persistent id naming ../ as its key', ['BAD_STORAGE', 'BAD_ZIP', 'BAD_PICKLE'], () => {
    const f = write('.pth', torchZip(storagePid('../../etc/passwd')));
    return { fn: () => readAll(f), size: fs.statSync(f).size };
  });
  check('persistent id with no hook (bare pickle)', ['BAD_PICKLE', 'FORBIDDEN_OPCODE'], () => {
    const p = storagePid('0');
    return { fn: () => unpickle(p, 0, { file: 'x' }), size: p.length };
  });

  // Zip containers.
  const okPkl = Buffer.concat([PROTO2, op('}'), STOP]);
  for (const [what, prefix] of [
    ['named ../data.pkl', '../'],
    ['with an absolute name', '/tmp/'],
  ]) {
    check(`zip entry ${what}`, ['BAD_ZIP', 'BAD_MAGIC', 'TRUNCATED'], () => {
      const f = write(
        '.pth',
        zip([
          { name: `${prefix}archive/data.pkl`, data: okPkl },
          { name: `${prefix}archive/version`, data: Buffer.from('3\n') },
        ]),
      );
      return { fn: () => readAll(f), size: fs.statSync(f).size };
    });
  }
  check('duplicate entry names', ['BAD_ZIP'], () => {
    const f = write('.pth', torchZip(okPkl, [{ name: 'archive/data.pkl', data: okPkl }]));
    return { fn: () => readAll(f), size: fs.statSync(f).size };
  });
  check('overlapping entries (two records, one local header)', ['BAD_ZIP'], () => {
    const f = write('.pth', torchZip(okPkl, [{ name: 'archive/data/0', data: okPkl, sameOffsetAs: 0 }]));
    return { fn: () => readAll(f), size: fs.statSync(f).size };
  });
  const bomb = Buffer.alloc(256 << 20);
  check('zip bomb in a .pth (256 MiB deflated data.pkl)', ['BAD_ZIP', 'LIMIT'], () => {
    const f = write('.pth', zip([{ name: 'archive/data.pkl', data: bomb, deflate: true }]));
    return { fn: () => readAll(f), size: fs.statSync(f).size };
  });
  check('zip bomb in a .model (256 MiB deflated .onnx)', ['BAD_ARCHIVE'], () => {
    const f = write('.model', zip([{ name: 'model/model.onnx', data: bomb, deflate: true }]));
    return { fn: () => readOnnx(f), size: fs.statSync(f).size };
  });
  check('zip bomb by declared size (2 GiB from a few bytes)', ['BAD_ARCHIVE'], () => {
    const f = write('.model', zip([{ name: 'model/model.onnx', data: Buffer.alloc(1000), deflate: true, declaredSize: 2 ** 31 - 2 }]));
    return { fn: () => readOnnx(f), size: fs.statSync(f).size };
  });

  // ONNX external data, made by the onnx package (the format's own writer).
  describe('ONNX external data', () => {
    const dir = path.join(tmp.dir, 'onnx-ext');
    const outsideDir = path.join(tmp.dir, 'outside');
    const secret = path.join(outsideDir, 'secret.bin');
    before(() => {
      fs.mkdirSync(dir, { recursive: true });
      fs.mkdirSync(outsideDir, { recursive: true });
      fs.writeFileSync(secret, Buffer.alloc(4096, 1));
      fs.symlinkSync(secret, path.join(dir, 'link.bin'));
      fs.symlinkSync(outsideDir, path.join(dir, 'linkdir'));
      const py = `
import sys, onnx
from onnx import helper, TensorProto
out, cases = sys.argv[1], sys.argv[2:]
for i, loc in enumerate(cases):
    loc, _, length = loc.partition('|')
    t = onnx.TensorProto(name='w', data_type=TensorProto.FLOAT, dims=[4, 3, 3, 3])
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add(); e.key = 'location'; e.value = loc
    if length:
        e = t.external_data.add(); e.key = 'length'; e.value = length
    n = helper.make_node('Conv', ['x', 'w'], ['y'], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    g = helper.make_graph([n], 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 4, 8, 8])], [t])
    onnx.save(helper.make_model(g), f'{out}/case{i}.onnx')
`;
      execFileSync(process.env.VGG_TEST_PYTHON ?? '/usr/bin/python3', [
        '-c',
        py,
        dir,
        secret,
        '../outside/secret.bin',
        'link.bin',
        'linkdir/secret.bin',
        'missing.bin',
        `link.bin|${2 ** 40}`,
      ]);
    });
    const cases = [
      'absolute path',
      "'..' leaving the folder",
      'symlink to a file outside',
      'symlinked folder outside',
      'missing file',
      'length of 1 TiB',
    ];
    cases.forEach((what, i) => {
      check(`external data: ${what}`, ['EXTERNAL_DATA'], () => {
        const f = path.join(dir, `case${i}.onnx`);
        return { fn: () => readOnnx(f), size: fs.statSync(f).size };
      });
    });
  });

  it("nothing ran: the payloads' marker does not exist, and nothing was written beside the inputs", () => {
    assert.equal(fs.existsSync(marker), false);
    const stray = fs.readdirSync(tmp.dir).filter((f) => !/^case-\d+\.(pth|model)$|^onnx-ext$|^outside$/.test(f));
    assert.deepEqual(stray, []);
  });
});

// safetensors (huggingface/safetensors README, Format): the attack is the
// header, 8 bytes of length then JSON, so every case is a few bytes that
// declare something big or ambiguous. Each is refused before anything is
// allocated by a declared size, with the reader's own code.
describe('security suite: safetensors headers', function () {
  const tmp = tempDir();
  after(() => tmp.cleanup());
  let n = 0;
  /** u64 length (the header's own unless `declared`), the header, the data buffer. */
  const file = (header: string, buffer = Buffer.alloc(0), declared?: bigint) => {
    const text = Buffer.from(header);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(declared ?? BigInt(text.length));
    const f = path.join(tmp.dir, `st-${n++}.safetensors`);
    fs.writeFileSync(f, Buffer.concat([len, text, buffer]));
    return f;
  };
  const check = (name: string, codes: readonly string[], make: () => string) =>
    it(`safetensors ${name} → ${codes.join('|')}`, async () => {
      const f = make();
      securityLog.push({ name: `safetensors ${name}`, code: await refused(() => readSafetensors(f), codes, fs.statSync(f).size) });
    });
  const t = (dtype: string, shape: number[], begin: number, end: number) => JSON.stringify({ dtype, shape, data_offsets: [begin, end] });

  check('header length 2^64-1', ['LIMIT'], () => file('{}', Buffer.alloc(0), 2n ** 64n - 1n));
  check('header length just under the limit, in a 10-byte file', ['BAD_HEADER'], () => file('{}', Buffer.alloc(0), 99_999_999n));
  check('a shape of 2^62 elements over 4 bytes', ['BAD_TENSOR'], () => file(`{"w":${t('F32', [2 ** 31, 2 ** 31], 0, 4)}}`, Buffer.alloc(4)));
  check('an end offset of 2^52 in a tiny file', ['BAD_OFFSETS'], () => file(`{"w":${t('U8', [2 ** 52], 0, 2 ** 52)}}`, Buffer.alloc(4)));
  check('two tensors aliasing the same bytes', ['BAD_OFFSETS'], () =>
    file(`{"a":${t('F32', [1], 0, 4)},"b":${t('F32', [1], 0, 4)}}`, Buffer.alloc(4)),
  );
  check('one name twice (JSON.parse would keep the last)', ['BAD_HEADER'], () =>
    file(`{"w":${t('F32', [1], 0, 4)},"w":${t('F32', [1], 4, 8)}}`, Buffer.alloc(8)),
  );
  check('a million nested arrays', ['BAD_HEADER'], () => file(`{"w":${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}}`));
  check('an F8_E4M3 tensor', ['UNSUPPORTED_DTYPE'], () => file(`{"w":${t('F8_E4M3', [4], 0, 4)}}`, Buffer.alloc(4)));

  it('safetensors names __proto__ / constructor stay names: nothing reaches Object.prototype', async () => {
    const f = file(`{"__metadata__":{"__proto__":"x"},"__proto__":${t('F32', [1], 0, 4)},"constructor":${t('F32', [1], 4, 8)}}`, Buffer.alloc(8));
    const { tensors } = await readSafetensors(f);
    assert.deepEqual([...tensors.keys()], ['__proto__', 'constructor']);
    assert.equal(({} as Record<string, unknown>).dtype, undefined);
    assert.equal(({} as Record<string, unknown>).data_offsets, undefined);
  });
});
