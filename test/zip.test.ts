// The zip module against Python's zipfile as the oracle: archives Python
// writes (data descriptors, deflate, ZIP64 records and extra fields, more
// than 65535 entries) must list and read exactly as zipfile reads them;
// damaged ones (patched by Python's struct) must be refused with a typed
// error; and a .model is read without reading the whole archive.
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { pythonCode, tempDir } from './helpers/python';
import { CheckpointError } from '../src/weights/errors';
import { OnnxFormatError, readOnnx } from '../src/weights/onnx';
import { FLAG, ZipReader, ZipWriter, bufferSource, fileSource, type ByteSource } from '../src/weights/zip';

const MAKE = String.raw`
import io, json, os, struct, sys, zipfile, hashlib
out = sys.argv[1]
manifest = {}

class Unseekable(io.RawIOBase):
    """A stream zipfile cannot seek back in: it writes data descriptors (flag bit 3)."""
    def __init__(self, f): self.f = f
    def writable(self): return True
    def write(self, b): return self.f.write(b)

def payload(i, n):
    # Compressible and incompressible parts, deterministic.
    return (b'entry %d ' % i) * (n // 16) + hashlib.sha256(b'%d' % i).digest() * (n // 64)

def describe(name):
    with zipfile.ZipFile(os.path.join(out, name)) as z:
        assert z.testzip() is None
        manifest[name] = [{'name': i.filename, 'size': i.file_size, 'method': i.compress_type,
                           'flags': i.flag_bits, 'sha256': hashlib.sha256(z.read(i)).hexdigest()} for i in z.infolist()]

# 1. Data descriptors: stored and deflated entries written to an unseekable stream, one ZIP64 descriptor.
with open(os.path.join(out, 'descriptors.zip'), 'wb') as f:
    with zipfile.ZipFile(Unseekable(f), 'w') as z:
        for i, n in enumerate([1000, 300000, 5]):
            zi = zipfile.ZipInfo('deflated/%d.bin' % i)
            zi.compress_type = zipfile.ZIP_DEFLATED
            with z.open(zi, 'w', force_zip64=(i == 1)) as w:
                w.write(payload(i, n))
        with z.open('stored.bin', 'w') as w:
            w.write(payload(9, 4096))
describe('descriptors.zip')

# 2. ZIP64 everywhere: zipfile's limit lowered, so sizes, offsets and the end records take their ZIP64 forms.
zipfile.ZIP64_LIMIT = 100
with zipfile.ZipFile(os.path.join(out, 'zip64.zip'), 'w') as z:
    z.writestr('small.txt', b'tiny')
    z.writestr(zipfile.ZipInfo('big_stored.bin'), payload(1, 5000))
    z.writestr('big_deflated.bin', payload(2, 50000), compress_type=zipfile.ZIP_DEFLATED)
    z.writestr('naïve ☃.txt', 'unicode name'.encode())
zipfile.ZIP64_LIMIT = (1 << 31) - 1
describe('zip64.zip')
raw = open(os.path.join(out, 'zip64.zip'), 'rb').read()
assert b'PK\x06\x06' in raw and b'PK\x06\x07' in raw

# 3. More entries than the classic end record can count.
with zipfile.ZipFile(os.path.join(out, 'many.zip'), 'w') as z:
    for i in range(66000):
        z.writestr('e/%d' % i, b'%d' % i)
with zipfile.ZipFile(os.path.join(out, 'many.zip')) as z:
    manifest['many.zip'] = {'count': len(z.infolist()), 'last': z.infolist()[-1].filename, 'lastData': z.read(z.infolist()[-1]).decode()}

# 4. Damaged copies of a plain archive, patched where zipfile's own records are.
with zipfile.ZipFile(os.path.join(out, 'plain.zip'), 'w') as z:
    z.writestr('a.bin', payload(3, 2000))
    z.writestr('b.bin', payload(4, 2000), compress_type=zipfile.ZIP_DEFLATED)
plain = open(os.path.join(out, 'plain.zip'), 'rb').read()
cd1 = plain.find(b'PK\x01\x02')
cd2 = plain.find(b'PK\x01\x02', cd1 + 4)
def patched(name, at, fmt, value, base=plain):
    b = bytearray(base); struct.pack_into(fmt, b, at, value)
    open(os.path.join(out, name), 'wb').write(bytes(b))
patched('overlap.zip', cd2 + 42, '<I', 0)              # b.bin's local header offset = a.bin's
patched('encrypted.zip', cd1 + 8, '<H', 1)             # a.bin claims encryption
patched('method.zip', cd1 + 10, '<H', 12)              # a.bin claims bzip2
patched('inflates_more.zip', cd2 + 24, '<I', 100)      # b.bin's uncompressed size: 100, it inflates to 2000+
patched('crc.zip', cd1 + 16, '<I', 0x12345678)         # a.bin's CRC
patched('multidisk.zip', len(plain) - 22 + 4, '<H', 3) # end record: disk 3
z64 = open(os.path.join(out, 'zip64.zip'), 'rb').read()
p = z64.find(b'PK\x01\x02')
while struct.unpack_from('<H', z64, p + 30)[0] == 0:   # the first central record with an extra field
    p = z64.find(b'PK\x01\x02', p + 4)
n = struct.unpack_from('<H', z64, p + 28)[0]
patched('extra_overrun.zip', p + 46 + n + 2, '<H', 0xFFF0, z64)  # its ZIP64 field's length runs past the record
import warnings
with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    with zipfile.ZipFile(os.path.join(out, 'duplicate.zip'), 'w') as z:
        z.writestr('same.bin', b'one')
        z.writestr('same.bin', b'two')
print(json.dumps(manifest))
`;

interface Described {
  name: string;
  size: number;
  method: number;
  flags: number;
  sha256: string;
}

/** Makes the errors of the archive reader CheckpointErrors, as the .pth reader does. */
const asCheckpoint = (file: string) => (code: 'TRUNCATED' | 'BAD_ZIP' | 'LIMIT', msg: string) =>
  new CheckpointError(code, `${msg} (checkpoint ${file})`, file);

const sha256 = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

/** A ByteSource that counts the bytes read through it. */
function counting(inner: ByteSource): ByteSource & { bytesRead: number } {
  const c = {
    size: inner.size,
    bytesRead: 0,
    async read(buf: Uint8Array, position: number) {
      const n = await inner.read(buf, position);
      c.bytesRead += n;
      return n;
    },
  };
  return c;
}

async function withFile<T>(file: string, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
  const fh = await fs.promises.open(file, 'r');
  try {
    return await fn(fh);
  } finally {
    await fh.close();
  }
}

async function rejectsZip(file: string, code: string, message: RegExp): Promise<void> {
  await withFile(file, async (fh) => {
    await assert.rejects(
      async () => {
        const zip = await ZipReader.open(await fileSource(fh), asCheckpoint(file));
        for (const e of zip.entries.values()) await zip.readEntry(e, 1 << 20);
      },
      (e: unknown) => {
        assert.ok(e instanceof CheckpointError, `expected a CheckpointError but got ${String(e)}`);
        assert.equal(e.code, code, e.message);
        assert.match(e.message, message);
        assert.equal(e.file, file);
        return true;
      },
    );
  });
}

describe('zip module (oracle: Python zipfile)', function () {
  const tmp = tempDir('vgg-native-zip-');
  const file = (name: string) => path.join(tmp.dir, name);
  let manifest: Record<string, unknown>;
  before(async function () {
    manifest = JSON.parse(await pythonCode(MAKE, [tmp.dir]));
  });
  after(() => tmp.cleanup());

  /** Every entry Python lists, read by us from a file handle and from a Buffer, equals what Python reads. */
  async function matchesPython(name: string): Promise<ZipReader> {
    const expected = manifest[name] as Described[];
    const fromBuffer = await ZipReader.open(bufferSource(fs.readFileSync(file(name))), asCheckpoint(name));
    return withFile(file(name), async (fh) => {
      const zip = await ZipReader.open(await fileSource(fh), asCheckpoint(name));
      assert.deepEqual(
        [...zip.entries.keys()],
        expected.map((e) => e.name),
      );
      for (const want of expected) {
        for (const z of [zip, fromBuffer]) {
          const e = z.entries.get(want.name)!;
          assert.equal(e.size, want.size, `${want.name} size`);
          assert.equal(e.method, want.method, `${want.name} method`);
          assert.equal(e.flags, want.flags, `${want.name} flags`);
          assert.equal(sha256(await z.readEntry(e, 1 << 30)), want.sha256, `${want.name} bytes`);
        }
      }
      return zip;
    });
  }

  it('reads entries whose sizes and CRC follow the data (data descriptors), stored and deflated, from the central directory', async function () {
    await matchesPython('descriptors.zip');
    const described = manifest['descriptors.zip'] as Described[];
    assert.ok(
      described.every((e) => e.flags & FLAG.DATA_DESCRIPTOR),
      'Python wrote data descriptors',
    );
    assert.ok(
      described.some((e) => e.method === 8 && e.size > 100_000),
      'a large deflated entry is among them',
    );
  });

  it('reads ZIP64 extra fields (sizes and local offsets) and the ZIP64 end record', async function () {
    await matchesPython('zip64.zip');
  });

  it('reads a central directory of more than 65535 entries through the ZIP64 end record', async function () {
    const m = manifest['many.zip'] as { count: number; last: string; lastData: string };
    await withFile(file('many.zip'), async (fh) => {
      const zip = await ZipReader.open(await fileSource(fh), asCheckpoint('many.zip'));
      assert.equal(zip.entries.size, m.count);
      const last = zip.entries.get(m.last)!;
      assert.equal((await zip.readEntry(last, 100)).toString(), m.lastData);
    });
  });

  it('reads only the records and the entry asked for, never the whole archive', async function () {
    // 48 MiB of padding in front of a small entry: open + one read must stay far below it.
    await pythonCode(
      String.raw`
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    z.writestr('padding.bin', os.urandom(48 << 20))
    z.writestr('synset.txt', 'n01440764 tench\n')
`,
      [file('padded.zip')],
    );
    await withFile(file('padded.zip'), async (fh) => {
      const source = counting(await fileSource(fh));
      const zip = await ZipReader.open(source, asCheckpoint('padded.zip'));
      assert.equal((await zip.readEntry(zip.entries.get('synset.txt')!, 1000)).toString(), 'n01440764 tench\n');
      assert.ok(source.bytesRead < 200_000, `read ${source.bytesRead} bytes of ${source.size}`);
    });
  });

  describe('refuses damaged archives with a typed error naming the file', function () {
    const cases: Array<[string, string, RegExp]> = [
      ['overlap.zip', 'BAD_ZIP', /Zip entries .* overlap/],
      ['encrypted.zip', 'BAD_ZIP', /Entry a\.bin is encrypted/],
      ['method.zip', 'BAD_ZIP', /Entry a\.bin uses compression method 12; only stored \(0\) and deflate \(8\) are read/],
      ['inflates_more.zip', 'BAD_ZIP', /Entry b\.bin should hold 100 bytes but holds more/],
      ['crc.zip', 'BAD_ZIP', /Entry a\.bin fails its CRC-32 check/],
      ['extra_overrun.zip', 'BAD_ZIP', /Extra field of big_stored\.bin runs past its record/],
      ['multidisk.zip', 'BAD_ZIP', /spans several disks/],
      ['duplicate.zip', 'BAD_ZIP', /Zip entry same\.bin appears twice/],
    ];
    for (const [name, code, message] of cases) {
      it(`${name} → ${code}`, async function () {
        await rejectsZip(file(name), code, message);
      });
    }

    it("an entry larger than the caller's limit → LIMIT, before anything is inflated", async function () {
      await withFile(file('zip64.zip'), async (fh) => {
        const zip = await ZipReader.open(await fileSource(fh), asCheckpoint('zip64.zip'));
        await assert.rejects(zip.readEntry(zip.entries.get('big_deflated.bin')!, 1000), { code: 'LIMIT' });
      });
    });

    it('readOnnx maps zip problems of a .model onto OnnxFormatError BAD_ARCHIVE', async function () {
      await assert.rejects(
        readOnnx(fs.readFileSync(file('overlap.zip'))),
        (e: unknown) =>
          e instanceof OnnxFormatError &&
          e.code === 'BAD_ARCHIVE' &&
          /^<buffer>: not a readable zip archive \(Zip entries a\.bin and b\.bin overlap/.test(e.message),
      );
      await assert.rejects(readOnnx(file('duplicate.zip')), { name: 'OnnxFormatError', code: 'BAD_ARCHIVE' });
    });
  });

  it("ZipWriter: Python reads what it writes, each entry's data on the requested alignment", async function () {
    const out = file('written.zip');
    const entries: Array<[string, Buffer]> = [
      ['a/data.pkl', Buffer.from('pickle')],
      ['a/data/0', crypto.randomBytes(1000)],
      ['a/naïve', Buffer.alloc(0)],
    ];
    const fh = await fs.promises.open(out, 'w');
    try {
      const w = new ZipWriter(fh, { align: 64 });
      for (const [name, data] of entries) await w.addStored(name, data);
      await w.finish();
    } finally {
      await fh.close();
    }
    const py = JSON.parse(
      await pythonCode(
        String.raw`
import hashlib, json, struct, sys, zipfile
raw = open(sys.argv[1], 'rb').read()
with zipfile.ZipFile(sys.argv[1]) as z:
    assert z.testzip() is None
    out = []
    for i in z.infolist():
        n, m = struct.unpack_from('<HH', raw, i.header_offset + 26)
        out.append({'name': i.filename, 'sha256': hashlib.sha256(z.read(i)).hexdigest(), 'start': i.header_offset + 30 + n + m})
print(json.dumps(out))
`,
        [out],
      ),
    ) as Array<{ name: string; sha256: string; start: number }>;
    assert.deepEqual(
      py.map((e) => e.name),
      entries.map(([n]) => n),
    );
    py.forEach((e, i) => {
      assert.equal(e.sha256, sha256(entries[i][1]), `${e.name} bytes`);
      assert.equal(e.start % 64, 0, `${e.name} data starts at ${e.start}`);
    });
  });
});

describe('readOnnx of a .model archive reads the .onnx entry, not the whole archive', function () {
  const tmp = tempDir('vgg-native-zip-model-');
  after(() => tmp.cleanup());

  it('padding beside the .onnx is never read', async function () {
    const script = path.join(__dirname, 'fixtures', 'make_onnx.py');
    await pythonCode(
      String.raw`
import json, os, subprocess, sys, zipfile
out = sys.argv[1]
subprocess.run([sys.executable, sys.argv[2], out, json.dumps([{'name': 'zm', 'kind': 'helper', 'archive': 'deflated'}])], check=True)
with zipfile.ZipFile(os.path.join(out, 'zm.model'), 'a') as z:
    z.writestr('zm/padding.bin', os.urandom(48 << 20))
`,
      [tmp.dir, script],
    );
    const model = path.join(tmp.dir, 'zm.model');
    const total = fs.statSync(model).size;
    // Count what every FileHandle reads while readOnnx runs.
    const proto = await withFile(model, async (fh) => Object.getPrototypeOf(fh) as { read: (...a: unknown[]) => Promise<{ bytesRead: number }> });
    const read = proto.read;
    let bytesRead = 0;
    proto.read = async function (this: unknown, ...args: unknown[]) {
      const r = await read.apply(this, args);
      bytesRead += r.bytesRead;
      return r;
    };
    try {
      const w = await readOnnx(model);
      assert.deepEqual(w.arch, { depth: 11, batchNorm: false });
    } finally {
      proto.read = read;
    }
    assert.ok(bytesRead > 0 && bytesRead < total - (48 << 20) + (1 << 20), `read ${bytesRead} of ${total} bytes`);
  });
});
