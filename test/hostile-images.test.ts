// Images that attack: extreme declared sizes, documents posing as images,
// formats we do not decode, concurrent failures. Each big case runs in a child
// process (test/helpers/preprocess-child.ts) so a native crash is a failed test
// rather than a dead mocha, and its peak RSS is held to PEAK_BOUND_BYTES.
// Oracles: hand-computed values (a one-colour image normalises to
// (c - mean) / std everywhere), PIL for what it refuses, the file's atime for
// "nothing read".
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { ImageInputError, preprocess, preprocessBatch, IMAGENET_MEAN, IMAGENET_STD } from '../src/image/preprocess';
import { DECODE_BUDGET_PIXELS, PEAK_BOUND_BYTES } from '../src/image/limits';
import { solidPng, withDeclaredSize } from './helpers/images';
import { pythonCode, tempDir } from './helpers/python';

const run = promisify(execFile);
const CHILD = path.join(__dirname, 'helpers', 'preprocess-child.ts');
const COLOUR: [number, number, number] = [120, 30, 200];
const EXPECTED = COLOUR.map((c, i) => (c - IMAGENET_MEAN[i]) / IMAGENET_STD[i]);

interface ChildResult {
  ok: boolean;
  code?: string;
  message?: string;
  shape?: number[];
  first?: number[];
  min?: number;
  max?: number;
  grewBytes: number;
}

async function inChild(file: string, options?: object): Promise<ChildResult> {
  const args = ['--import', 'tsx', CHILD, file, ...(options ? [JSON.stringify(options)] : [])];
  const { stdout } = await run(process.execPath, args, { cwd: path.join(__dirname, '..'), maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').pop() as string);
}

/** Processed to the right values, or refused with TOO_LARGE; either way within the memory bound. */
function assertBounded(r: ChildResult, what: string): void {
  assert.ok(
    r.grewBytes < PEAK_BOUND_BYTES,
    `${what}: peak RSS grew ${(r.grewBytes / 2 ** 20).toFixed(0)} MiB (bound ${PEAK_BOUND_BYTES / 2 ** 20} MiB)`,
  );
  if (!r.ok) {
    assert.equal(r.code, 'TOO_LARGE', `${what}: ${r.message}`);
    return;
  }
  assert.deepEqual(r.shape, [1, 3, 224, 224], what);
  for (let c = 0; c < 3; c++) assert.ok(Math.abs((r.first as number[])[c] - EXPECTED[c]) < 1e-5, `${what}: channel ${c} ${r.first}`);
}

describe('hostile images', function () {
  this.timeout(300_000);
  const tmp = tempDir('vgg-hostile-img-');
  const file = (name: string) => path.join(tmp.dir, name);
  after(() => tmp.cleanup());

  describe('declared sizes: refused by the header or processed within the memory bound, never a crash', () => {
    it(`a 60000x2 PNG (a few hundred bytes): the short-side resize would ask for 7,680,000x256 pixels`, async () => {
      const png = await solidPng(60000, 2, COLOUR);
      assert.ok(png.length < 1000, `${png.length} bytes`);
      fs.writeFileSync(file('strip.png'), png);
      assertBounded(await inChild(file('strip.png')), '60000x2');
    });

    it('a 1x100000 PNG', async () => {
      fs.writeFileSync(file('tall.png'), await solidPng(1, 100000, COLOUR));
      assertBounded(await inChild(file('tall.png')), '1x100000');
    });

    it('a 196-megapixel PNG (14000x14000) is shrunk while decoding, never held whole', async () => {
      const png = await solidPng(14000, 14000, COLOUR);
      fs.writeFileSync(file('big.png'), png);
      const r = await inChild(file('big.png'));
      assertBounded(r, '14000x14000');
      assert.ok(r.ok, r.message);
      // Held whole, the decode alone would be 588 MB of RGB.
      assert.ok(r.grewBytes < 14000 * 14000 * 3, `grew ${r.grewBytes}`);
    });

    it('a JPEG declaring 65500x65500 is refused from its header', async () => {
      const jpeg = await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 1, g: 2, b: 3 } } })
        .jpeg()
        .toBuffer();
      fs.writeFileSync(file('huge.jpg'), withDeclaredSize(jpeg, 65500, 65500));
      const r = await inChild(file('huge.jpg'));
      assertBounded(r, '65500x65500 JPEG');
      assert.equal(r.ok, false);
      assert.match(r.message as string, /exceeds pixel limit \(maxPixels = 268402689\)/);
    });

    it('formats whose decoder holds the whole frame are refused past the decode budget (GIF, interlaced PNG)', async () => {
      const side = Math.ceil(Math.sqrt(DECODE_BUDGET_PIXELS)) + 1;
      const gif = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 9, g: 9, b: 9 } } })
        .gif()
        .toBuffer();
      const interlaced = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 9, g: 9, b: 9 } } })
        .png({ progressive: true })
        .toBuffer();
      for (const [name, bytes] of [
        ['GIF', withDeclaredSize(gif, side, side)],
        ['interlaced PNG', withDeclaredSize(interlaced, side, side)],
      ] as const) {
        const started = Date.now();
        await assert.rejects(preprocess(bytes), (e: Error) => {
          assert.ok(e instanceof ImageInputError && e.code === 'TOO_LARGE', `${name}: ${e.message}`);
          assert.match(e.message, new RegExp(`${name} decoder holds the whole frame`));
          return true;
        });
        assert.ok(Date.now() - started < 2000, `${name} took ${Date.now() - started} ms`);
      }
    });

    it('an explicit crop: false with an extreme strip is TOO_LARGE, not an allocation', async () => {
      const png = await solidPng(60000, 2, COLOUR);
      await assert.rejects(preprocess(png, { crop: false }), (e: Error) => e instanceof ImageInputError && e.code === 'TOO_LARGE');
    });
  });

  describe('formats decided from the bytes', () => {
    let atimeWorks = false;
    before(() => {
      // relatime updates atime on a read when atime <= mtime: set both in the past and read once to see.
      fs.writeFileSync(file('probe.bin'), 'x');
      fs.utimesSync(file('probe.bin'), new Date(2000, 0, 1), new Date(2000, 0, 1));
      fs.readFileSync(file('probe.bin'));
      atimeWorks = fs.statSync(file('probe.bin')).atimeMs > new Date(2001, 0, 1).getTime();
    });

    it('an SVG whose <image> names a file beside it is refused, under any name, and the file is not read', async function () {
      if (!atimeWorks) this.skip(); // a noatime mount cannot show reads; the refusal itself is checked below
      const beside = await sharp({ create: { width: 30, height: 20, channels: 3, background: { r: 0, g: 255, b: 0 } } })
        .png()
        .toBuffer();
      fs.writeFileSync(file('secret.png'), beside);
      const svg = `<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="30" height="20"><image href="secret.png" xlink:href="secret.png" width="30" height="20"/></svg>`;
      for (const name of ['evil.svg', 'evil.jpg']) fs.writeFileSync(file(name), svg);
      fs.utimesSync(file('secret.png'), new Date(2000, 0, 1), new Date(2000, 0, 1));
      for (const input of [file('evil.svg'), file('evil.jpg'), Buffer.from(svg)]) {
        await assert.rejects(preprocess(input), (e: Error) => {
          assert.ok(e instanceof ImageInputError && e.code === 'UNSUPPORTED_FORMAT', e.message);
          assert.match(e.message, /unsupported image format: SVG/);
          return true;
        });
      }
      assert.ok(fs.statSync(file('secret.png')).atimeMs < new Date(2001, 0, 1).getTime(), 'the file beside the SVG was read');
      // The oracle: PIL refuses SVG too.
      const pil = await pythonCode(
        'import sys\nfrom PIL import Image\ntry:\n  Image.open(sys.argv[1]); print("opened")\nexcept Exception as e: print(type(e).__name__)',
        [file('evil.jpg')],
      );
      assert.equal(pil.trim(), 'UnidentifiedImageError');
    });

    it('a 100000x100000 SVG is refused by content, before any size check', async () => {
      const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"><rect width="10" height="10"/></svg>');
      await assert.rejects(preprocess(svg, { maxPixels: false }), (e: Error) => e instanceof ImageInputError && e.code === 'UNSUPPORTED_FORMAT');
    });

    it('HEIC (what iPhones save) is UNSUPPORTED_FORMAT with a hint to convert, not CORRUPT', async () => {
      const ftyp = Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypheic\0\0\0\0mif1heic', 'latin1'), Buffer.alloc(64)]);
      fs.writeFileSync(file('IMG_0001.HEIC'), ftyp);
      await assert.rejects(preprocess(file('IMG_0001.HEIC')), (e: Error) => {
        assert.ok(e instanceof ImageInputError && e.code === 'UNSUPPORTED_FORMAT', e.message);
        assert.match(e.message, /HEIC.*convert it to JPEG/);
        return true;
      });
    });

    it('other formats are named: PDF, BMP, JPEG 2000', async () => {
      const cases: Array<[string, Buffer]> = [
        ['PDF', Buffer.from('%PDF-1.7\n%\xe2\xe3\n1 0 obj', 'latin1')],
        ['BMP', Buffer.concat([Buffer.from('BM', 'latin1'), Buffer.alloc(60)])],
        ['JPEG 2000', Buffer.concat([Buffer.from([0, 0, 0, 0x0c, 0x6a, 0x50, 0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a]), Buffer.alloc(40)])],
      ];
      for (const [name, bytes] of cases) {
        await assert.rejects(
          preprocess(bytes),
          (e: Error) => e instanceof ImageInputError && e.code === 'UNSUPPORTED_FORMAT' && e.message.includes(name),
        );
      }
    });
  });

  it('concurrent failures: each message comes from its own decode', async () => {
    const base = sharp({ create: { width: 400, height: 300, channels: 3, background: { r: 1, g: 2, b: 3 } } });
    const jpg = await base.clone().jpeg().toBuffer();
    const png = await base.clone().png().toBuffer();
    const webp = await base.clone().webp().toBuffer();
    const cut = (b: Buffer) => b.subarray(0, Math.floor(b.length * 0.7));
    const inputs = [cut(jpg), cut(png), cut(webp)];
    const own = [/jpeg/i, /png/i, /webp/i];
    const results = await preprocessBatch(
      Array.from({ length: 30 }, (_, i) => inputs[i % 3]),
      { concurrency: 4 },
    );
    for (const r of results) {
      assert.ok(!r.ok && r.error instanceof ImageInputError && r.error.code === 'CORRUPT', `#${r.index}`);
      const detail = /\(libvips: (.*)\)$/.exec(r.error.message)?.[1] ?? '';
      const k = r.index % 3;
      assert.match(detail, own[k], `#${r.index}: ${r.error.message}`);
      for (let j = 0; j < 3; j++) if (j !== k) assert.doesNotMatch(detail, own[j], `#${r.index} quotes another decode: ${r.error.message}`);
    }
  });
});
