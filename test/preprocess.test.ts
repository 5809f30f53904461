// Image preprocessing and augmentation, checked against PIL (test/fixtures/pil_reference.py),
// never against our own output.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import {
  preprocess,
  preprocessBatch,
  ImageInputError,
  IMAGENET_MEAN,
  IMAGENET_STD,
  type ImageInput,
  type PreprocessOptions,
} from '../src/image/preprocess';
import { augment, createRng, type AugmentOptions } from '../src/image/augment';
import { IMAGENET_CLASSES } from '../src/labels/imagenet';
import { python, pythonCode, readF32, tempDir } from './helpers/python';
import { hugePngHeader } from './helpers/images';
import type { Tensor } from '../src/tensor';

const SKI = '/usr/lib/python3/dist-packages/skimage/data';
const SKL = '/usr/lib/python3/dist-packages/sklearn/datasets/images';
const ORACLE = path.join(__dirname, 'fixtures', 'pil_reference.py');
const MAKE_INPUTS = path.join(__dirname, 'fixtures', 'pil_make_inputs.py');
const MAKE_SMALL = path.join(__dirname, 'fixtures', 'pil_make_small.py');
/** Enlargement factors checked against PIL (sharp enlarges with affine(), not resize()). */
const UP_FACTORS = [1.5, 2, 4, 7];
const UP_PHOTOS = ['chelsea', 'astronaut', 'rocket', 'motorcycle_left', 'camera', 'logo'];

// Real photographs; camera is greyscale, logo is RGBA, rocket has a non-sRGB ICC profile.
const PHOTOS: Record<string, string> = {
  chelsea: `${SKI}/chelsea.png`,
  coffee: `${SKI}/coffee.png`,
  astronaut: `${SKI}/astronaut.png`,
  rocket: `${SKI}/rocket.jpg`,
  china: `${SKL}/china.jpg`,
  flower: `${SKL}/flower.jpg`,
  hubble: `${SKI}/hubble_deep_field.jpg`,
  motorcycle: `${SKI}/motorcycle_left.png`,
  camera: `${SKI}/camera.png`,
  logo: `${SKI}/logo.png`,
};

/** Mean absolute difference in normalised units. */
function mad(a: Tensor, b: Float32Array): number {
  assert.equal(a.data.length, b.length);
  let s = 0;
  for (let i = 0; i < b.length; i++) s += Math.abs(a.data[i] - b[i]);
  return s / b.length;
}

describe('image preprocessing (vs PIL)', function () {
  this.timeout(120_000);
  const tmp = tempDir('vgg-preprocess-');
  const file = (name: string) => path.join(tmp.dir, name);
  const ref = (name: string) => readF32(file(`${name}.f32`));
  let catW = 0;
  let catH = 0;

  before(async () => {
    const dims = await python(MAKE_INPUTS, [tmp.dir, PHOTOS.chelsea, PHOTOS.coffee]);
    [catW, catH] = dims.trim().split(' ').map(Number);
    const jobs: object[] = Object.entries(PHOTOS).map(([name, src]) => ({ src, out: file(`${name}.f32`) }));
    jobs.push(
      { src: file('oriented6.jpg'), out: file('oriented6.f32') },
      { src: file('alpha.png'), out: file('alpha.f32') },
      { src: file('alpha.png'), out: file('alpha-white.f32'), background: [255, 255, 255] },
      { src: file('grey-alpha.png'), out: file('grey-alpha.f32') },
      { src: file('cat.webp'), out: file('webp.f32') },
      { src: file('cat.gif'), out: file('gif.f32') },
      { src: file('cat.tiff'), out: file('tiff.f32') },
      { src: PHOTOS.china, out: file('china-rect.f32'), crop: [200, 160] },
      { src: PHOTOS.china, out: file('china-nocrop.f32'), crop: null },
      { src: PHOTOS.china, out: file('china-squash.f32'), mode: 'squash' },
      { src: PHOTOS.china, out: file('china-unit.f32'), short: 128, crop: 112, mean: [0, 0, 0], std: [255, 255, 255] },
      { src: PHOTOS.chelsea, out: file('chelsea-squash-flip.f32'), mode: 'squash', hflip: true },
    );
    // Small PIL-made inputs for enlarging: 8x8 digits, photos squashed to 32x32 / 300x100, short side 64.
    const upSrc = UP_PHOTOS.map((n) => Object.values(PHOTOS).find((p) => path.basename(p).startsWith(`${n}.`))!);
    await python(MAKE_SMALL, [tmp.dir, ...upSrc]);
    for (const f of UP_FACTORS) {
      for (let i = 0; i < 4; i++) jobs.push({ src: file(`digit${i}.png`), out: file(`up-digit${i}-${f}.f32`), short: 8 * f, crop: null });
      for (const n of UP_PHOTOS) {
        jobs.push({ src: file(`${n}-32.png`), out: file(`up-${n}-32-${f}.f32`), short: 32 * f, crop: null });
        jobs.push({ src: file(`${n}-64.png`), out: file(`up-${n}-64-${f}.f32`), short: 64 * f, crop: null });
      }
    }
    for (const n of UP_PHOTOS) {
      jobs.push({ src: file(`${n}-64.png`), out: file(`up-${n}-64-default.f32`) });
      jobs.push({ src: file(`${n}-wide.png`), out: file(`up-${n}-wide.f32`), mode: 'squash' });
      jobs.push({ src: file(`${n}-32.png`), out: file(`up-${n}-32-flip.f32`), mode: 'squash', hflip: true });
      jobs.push({ src: file(`${n}-32.png`), out: file(`up-${n}-32-bicubic.f32`), short: 128, crop: null, filter: 'bicubic' });
    }
    await python(ORACLE, [JSON.stringify(jobs)]);
  });
  after(() => tmp.cleanup());

  describe('default pipeline (mmcls ImageNet test: short side 256, bilinear, centre crop 224)', () => {
    for (const name of Object.keys(PHOTOS)) {
      it(`${name}: MAD < 0.02 against PIL`, async () => {
        const t = await preprocess(PHOTOS[name]);
        assert.deepEqual(t.shape, [1, 3, 224, 224]);
        const m = mad(t, ref(name));
        // Measured with sharp 0.34.5 / libvips 8.17.3: 0.0019 (logo) .. 0.0040 (motorcycle).
        assert.ok(m < 0.02, `MAD ${m}`);
      });
    }
  });

  describe('enlarging (vs PIL: pixel centres aligned, edges clamped)', () => {
    // Measured with sharp 0.34.5 / libvips 8.17.3 (all MAD): digits .0000-.0029,
    // 32x32 photos .0017-.0046, short side 64 .0014-.0045; resize() alone gave up to .67.
    const check = async (t: Tensor, refName: string, shape?: number[]) => {
      if (shape) assert.deepEqual(t.shape, shape);
      const m = mad(t, ref(refName));
      assert.ok(m < 0.02, `${refName}: MAD ${m}`);
    };
    for (const f of UP_FACTORS) {
      it(`x${f}: 8x8 digits -> ${8 * f}, 32x32 photos -> ${32 * f}, short side 64 -> ${64 * f}`, async () => {
        for (let i = 0; i < 4; i++) {
          await check(await preprocess(file(`digit${i}.png`), { resizeShort: 8 * f, crop: false }), `up-digit${i}-${f}`, [1, 3, 8 * f, 8 * f]);
        }
        for (const n of UP_PHOTOS) {
          await check(await preprocess(file(`${n}-32.png`), { resizeShort: 32 * f, crop: false }), `up-${n}-32-${f}`, [1, 3, 32 * f, 32 * f]);
          await check(await preprocess(file(`${n}-64.png`), { resizeShort: 64 * f, crop: false }), `up-${n}-64-${f}`);
        }
      });
    }

    it('default pipeline on a 64-pixel photo (x4, crop 224); squash enlarging one axis, shrinking the other', async () => {
      for (const n of UP_PHOTOS) {
        await check(await preprocess(file(`${n}-64.png`)), `up-${n}-64-default`, [1, 3, 224, 224]);
        await check(await preprocess(file(`${n}-wide.png`), { resize: 'squash' }), `up-${n}-wide`, [1, 3, 224, 224]); // 300x100 -> 224x224
      }
    });

    it('augment: 32x32 -> 224 with a certain flip; bicubic enlarging', async () => {
      for (const n of UP_PHOTOS) {
        const t = await augment(file(`${n}-32.png`), { randomResizedCrop: { scale: [1, 1], ratio: [1, 1] }, hflip: 1 }, createRng(0));
        await check(t, `up-${n}-32-flip`, [1, 3, 224, 224]);
        await check(await preprocess(file(`${n}-32.png`), { resizeShort: 128, crop: false, interpolation: 'bicubic' }), `up-${n}-32-bicubic`);
      }
    });
  });

  describe('input kinds', () => {
    it('path, Buffer, Uint8Array and sharp instance give identical tensors', async () => {
      const bytes = fs.readFileSync(PHOTOS.flower);
      const results = await Promise.all(
        [PHOTOS.flower, bytes, new Uint8Array(bytes), sharp(PHOTOS.flower, { ignoreIcc: true })].map((x) => preprocess(x as ImageInput)),
      );
      assert.ok(mad(results[0], ref('flower')) < 0.02);
      for (const r of results.slice(1)) assert.deepEqual(r.data, results[0].data);
    });

    it('raw RGB and RGBA pixels (alpha dropped) match PIL', async () => {
      const rgb = fs.readFileSync(file('cat.rgb'));
      const t = await preprocess({ data: rgb, width: catW, height: catH, channels: 3 });
      assert.ok(mad(t, ref('chelsea')) < 0.02);
      const rgba = new Uint8ClampedArray(fs.readFileSync(file('alpha.rgba')));
      const a = await preprocess({ data: rgba, width: catW, height: catH, channels: 4 });
      assert.ok(mad(a, ref('alpha')) < 0.02);
    });

    it('a ready tensor passes through: [3,H,W] -> [1,3,H,W], same data', async () => {
      const data = new Float32Array(3 * 5 * 7).map((_, i) => i);
      const t = await preprocess({ data, shape: [3, 5, 7] });
      assert.deepEqual(t.shape, [1, 3, 5, 7]);
      assert.equal(t.data, data);
      await assert.rejects(preprocess({ data, shape: [1, 5, 21] }), /Expected \[3, H, W\] or \[1, 3, H, W\] for input\.shape/);
      await assert.rejects(preprocess({ data, shape: [3, 5, 8] }), RangeError);
    });
  });

  describe('decoding', () => {
    it('applies EXIF orientation', async () => {
      const m = mad(await preprocess(file('oriented6.jpg')), ref('oriented6'));
      assert.ok(m < 0.02, `MAD ${m}`);
    });

    it('drops alpha like PIL convert("RGB") by default; composites onto options.background', async () => {
      const dropped = await preprocess(file('alpha.png'));
      assert.ok(mad(dropped, ref('alpha')) < 0.02, `MAD ${mad(dropped, ref('alpha'))}`);
      const white = await preprocess(file('alpha.png'), { background: '#ffffff' });
      assert.ok(mad(white, ref('alpha-white')) < 0.02, `MAD ${mad(white, ref('alpha-white'))}`);
      const ga = await preprocess(file('grey-alpha.png'));
      assert.ok(mad(ga, ref('grey-alpha')) < 0.02);
    });

    it('16-bit PNG becomes 8-bit (coffee * 257 matches coffee)', async () => {
      const m = mad(await preprocess(file('coffee16.png')), ref('coffee'));
      assert.ok(m < 0.02, `MAD ${m}`);
    });

    it('CMYK JPEG: converted as PIL does (no ICC profile), within half a level on average', async () => {
      // A print-style CMYK JPEG with a real black channel, written by PIL; PIL's convert('RGB') is the reference.
      await pythonCode(
        `
import sys, numpy as np
from PIL import Image
d = sys.argv[1]
rgb = Image.open(sys.argv[2]).convert('RGB')
c = np.array(rgb.convert('CMYK')).astype(np.int32)
c[..., 3] = np.clip((c[..., 0] + c[..., 1] + c[..., 2]) // 4, 0, 255)
Image.fromarray(c.astype(np.uint8), 'CMYK').save(d + '/cmyk.jpg', quality=95)
im = Image.open(d + '/cmyk.jpg')
assert im.mode == 'CMYK', im.mode
np.ascontiguousarray(np.array(im.convert('RGB')).transpose(2, 0, 1), dtype='<f4').tofile(d + '/cmyk-rgb.f32')
print(im.size[0], im.size[1])
`,
        [tmp.dir, PHOTOS.chelsea],
      );
      const { width, height } = await sharp(PHOTOS.chelsea).metadata();
      // Short side already at its size and no crop: the decoded pixels themselves, in 0..255.
      const t = await preprocess(file('cmyk.jpg'), { resizeShort: Math.min(width!, height!), crop: false, mean: [0, 0, 0], std: [1, 1, 1] });
      assert.deepEqual(t.shape, [1, 3, height, width]);
      const levels = mad(t, readF32(file('cmyk-rgb.f32')));
      assert.ok(levels < 0.5, `mean absolute difference ${levels.toFixed(3)} levels from PIL (an ICC conversion is 8-12)`);
    });

    it('16-bit grey PNG: each value becomes its high byte (v >> 8, as libvips and OpenCV scale), not clamped as Pillow 9 does', async () => {
      const values = [0, 255, 256, 4660, 33023, 65279, 65534, 65535];
      await pythonCode(
        `
import sys, numpy as np
from PIL import Image
v = np.array([[${values.join(', ')}]] * 32, dtype=np.uint16)
Image.fromarray(np.tile(v, (1, 4)), 'I;16').save(sys.argv[1] + '/grey16.png')
`,
        [tmp.dir],
      );
      const t = await preprocess(file('grey16.png'), { resizeShort: 32, crop: false, mean: [0, 0, 0], std: [1, 1, 1] });
      assert.deepEqual(t.shape, [1, 3, 32, 32]);
      const row = [...t.data.subarray(0, values.length)];
      assert.deepEqual(
        row,
        values.map((v) => v >> 8),
      ); // hand-computed: [0, 0, 1, 18, 128, 254, 255, 255]
      for (let c = 1; c < 3; c++) assert.deepEqual([...t.data.subarray(c * 1024, c * 1024 + values.length)], row, 'grey to R = G = B');
    });

    for (const [fmt, name] of [
      ['WebP', 'webp'],
      ['GIF (first frame)', 'gif'],
      ['TIFF', 'tiff'],
    ]) {
      it(`reads ${fmt}`, async () => {
        const m = mad(await preprocess(file(`cat.${name}`)), ref(name));
        assert.ok(m < 0.02, `MAD ${m}`);
      });
    }

    it('reads AVIF when sharp has it', async function () {
      if (!sharp.format.heif?.output?.buffer) this.skip();
      const avif = await sharp(PHOTOS.chelsea).avif({ lossless: true }).toBuffer();
      const m = mad(await preprocess(avif), ref('chelsea'));
      assert.ok(m < 0.05, `MAD ${m}`); // lossless AVIF still goes through YUV
    });
  });

  describe('colour profiles', () => {
    it('an Adobe RGB JPEG keeps its raw values by default (as PIL); colourManage: true matches PIL ImageCms to sRGB', async () => {
      // PIL's lcms2 conversion (relative colorimetric, libvips' default intent) is the oracle.
      const out = file('rocket-srgb.u8');
      const py = [
        'import io, sys',
        'from PIL import Image, ImageCms',
        'im = Image.open(sys.argv[1])',
        'src = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))',
        'cm = ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), renderingIntent=1, outputMode="RGB")',
        'open(sys.argv[2], "wb").write(cm.tobytes())',
        'print(ImageCms.getProfileDescription(src).strip()); print(im.size[0]); print(im.size[1])',
      ].join('\n');
      const [desc, w, h] = (await pythonCode(py, [PHOTOS.rocket, out])).trim().split('\n');
      assert.match(desc, /\(1998\)/); // "Adobe RGB (1998)"
      const pil = fs.readFileSync(out);
      const levels = (t: Tensor) => {
        const n = Number(w) * Number(h);
        let sum = 0;
        let max = 0;
        for (let c = 0; c < 3; c++)
          for (let i = 0; i < n; i++) {
            const d = Math.abs(t.data[c * n + i] * IMAGENET_STD[c] + IMAGENET_MEAN[c] - pil[3 * i + c]);
            sum += d;
            max = Math.max(max, d);
          }
        return { mean: sum / (3 * n), max };
      };
      const whole: PreprocessOptions = { resize: 'squash', crop: [Number(h), Number(w)] }; // no resampling: the decoded pixels
      const managed = levels(await preprocess(PHOTOS.rocket, { ...whole, colourManage: true }));
      assert.ok(managed.mean < 0.05 && managed.max <= 1.01, `managed vs PIL ImageCms: ${JSON.stringify(managed)}`);
      const raw = levels(await preprocess(PHOTOS.rocket, whole));
      assert.ok(raw.mean > 3, `raw decode should differ from the managed one: ${JSON.stringify(raw)}`);
    });
  });

  describe('options', () => {
    it('crop [h, w], no crop, squash, custom mean/std/short side', async () => {
      const rect = await preprocess(PHOTOS.china, { crop: [200, 160] });
      assert.deepEqual(rect.shape, [1, 3, 200, 160]);
      assert.ok(mad(rect, ref('china-rect')) < 0.02);
      const none = await preprocess(PHOTOS.china, { crop: false });
      assert.deepEqual(none.shape, [1, 3, 256, 383]); // int(256 * 640 / 427) = 383
      assert.ok(mad(none, ref('china-nocrop')) < 0.02);
      const squash = await preprocess(PHOTOS.china, { resize: 'squash' });
      assert.deepEqual(squash.shape, [1, 3, 224, 224]);
      assert.ok(mad(squash, ref('china-squash')) < 0.02);
      const unit = await preprocess(PHOTOS.china, { resizeShort: 128, crop: 112, mean: [0, 0, 0], std: [255, 255, 255] });
      // Same 0.02 budget in ImageNet-std units, rescaled to std = 255.
      const mu = mad(unit, ref('china-unit'));
      assert.ok(mu < (0.02 * 58) / 255, `MAD ${mu}`);
    });

    it('other interpolations run and stay close to bilinear', async () => {
      for (const interpolation of ['bicubic', 'lanczos', 'nearest'] as const) {
        const t = await preprocess(PHOTOS.coffee, { interpolation });
        assert.ok(mad(t, ref('coffee')) < 0.1, interpolation);
      }
    });

    // The package's contract (src/errors.ts): a wrong type is a TypeError, a value of the right type outside what is allowed a RangeError.
    const bad: Array<[unknown, RegExp, typeof TypeError | typeof RangeError]> = [
      ['nope', /Expected an object for options but received "nope" of type string/, TypeError],
      [{ crop: 'big' }, /for options\.crop but received "big" of type string/, TypeError],
      [{ crop: [224] }, /for options\.crop/, RangeError],
      [{ crop: -1 }, /for options\.crop but received -1/, RangeError],
      [{ mean: [1, 2] }, /Expected an array of 3 finite numbers for options\.mean/, RangeError],
      [{ mean: 'grey' }, /for options\.mean/, TypeError],
      [{ std: [1, 0, 1] }, /for options\.std\[1\] but received 0/, RangeError],
      [{ resize: 'zoom' }, /Expected one of 'short', 'squash' for options\.resize/, RangeError],
      [{ interpolation: 'cubic' }, /for options\.interpolation/, RangeError],
      [{ resizeShort: 0 }, /for options\.resizeShort/, RangeError],
      [{ resizeShort: '256' }, /for options\.resizeShort/, TypeError],
      [{ maxPixels: -1 }, /for options\.maxPixels/, RangeError],
      [{ failOn: 'never' }, /for options\.failOn/, RangeError],
      [{ background: 7 }, /for options\.background/, TypeError],
      [{ background: 'not-a-colour' }, /for options\.background/, RangeError],
      [{ background: { r: 300, g: 0, b: 0 } }, /for options\.background\.r/, RangeError],
      [{ cropp: 224 }, /only the keys .* for options but received "cropp"/, RangeError],
    ];
    for (const [options, message, type] of bad) {
      it(`rejects ${JSON.stringify(options)} with a ${type.name} naming the parameter`, async () => {
        await assert.rejects(preprocess(PHOTOS.chelsea, options as PreprocessOptions), (e: Error) => e instanceof type && message.test(e.message));
      });
    }

    it('rejects a crop larger than the short side (output would shrink)', async () => {
      await assert.rejects(preprocess(PHOTOS.chelsea, { crop: 300 }), RangeError);
    });
  });

  describe('bad inputs', () => {
    const isInputError = (re: RegExp) => (e: Error) => e instanceof ImageInputError && re.test(e.message);

    it('wrong types: TypeError naming the parameter', async () => {
      for (const x of [42, null, undefined, {}, [1, 2], '']) {
        await assert.rejects(
          preprocess(x as unknown as ImageInput),
          (e: Error) => e instanceof TypeError && /for input but received/.test(e.message),
        );
      }
      await assert.rejects(preprocess({ data: new Uint8Array(5), width: 2, height: 2, channels: 3 }), RangeError);
      await assert.rejects(preprocess({ data: new Uint8Array(12), width: 2, height: 2, channels: 5 as 3 }), /for input\.channels/);
    });

    it('bytes that are not an image', async () => {
      await assert.rejects(preprocess(Buffer.from('definitely not an image')), isInputError(/unsupported image format/));
    });

    it('empty buffer', async () => {
      await assert.rejects(preprocess(Buffer.alloc(0)), isInputError(/empty buffer/));
    });

    it('truncated JPEG: an error by default (like PIL), decodable with failOn "none"', async () => {
      const cut = file('china-cut.jpg');
      const bytes = fs.readFileSync(PHOTOS.china);
      fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
      // PIL refuses both files too: an independent check that they really are truncated.
      const pil = await pythonCode(
        'import sys\nfrom PIL import Image\nfor f in sys.argv[1:]:\n  try:\n    Image.open(f).convert("RGB"); print("ok")\n  except OSError: print("error")',
        [cut, `${SKI}/truncated.jpg`],
      );
      assert.deepEqual(pil.trim().split('\n'), ['error', 'error']);
      const truncated = /cannot decode file: the image data is truncated or corrupt \(libvips: .+\)/;
      await assert.rejects(preprocess(cut), (e: Error) => e instanceof ImageInputError && e.path === cut && truncated.test(e.message));
      await assert.rejects(preprocess(`${SKI}/truncated.jpg`), (e: Error) => e instanceof ImageInputError && truncated.test(e.message));
      const t = await preprocess(cut, { failOn: 'none' });
      assert.deepEqual(t.shape, [1, 3, 224, 224]);
    });

    it('truncated JPEGs decoded concurrently: the same clear message every time', async () => {
      // libvips' shared error buffer sometimes says "Unknown error" here instead of
      // "premature end of JPEG"; the summary must not depend on that.
      const bytes = fs.readFileSync(PHOTOS.china);
      const cut = bytes.subarray(0, Math.floor(bytes.length * 0.6));
      const cutFile = file('china-cut2.jpg');
      fs.writeFileSync(cutFile, cut);
      const results = await preprocessBatch(
        Array.from({ length: 40 }, (_, i) => (i % 2 ? cutFile : cut)),
        { concurrency: 4 },
      );
      for (const r of results) {
        assert.ok(!r.ok && r.error instanceof ImageInputError, `#${r.index} decoded`);
        const where =
          r.index % 2
            ? `Image input #${r.index} "${cutFile}": cannot decode file`
            : `Image input #${r.index}: cannot decode ${cut.length}-byte JPEG buffer`;
        assert.ok(r.error.message.startsWith(`${where}: the image data is truncated or corrupt (libvips: `), r.error.message);
        assert.ok(r.error.cause instanceof Error); // sharp's error, raw text and all
      }
    });

    it('1x1 image is upscaled (short side -> 256) and still gives 224x224', async () => {
      const px = await sharp({ create: { width: 1, height: 1, channels: 3, background: { r: 200, g: 100, b: 50 } } })
        .png()
        .toBuffer();
      const t = await preprocess(px);
      assert.deepEqual(t.shape, [1, 3, 224, 224]);
      const expected = [(200 - 123.675) / 58.395, (100 - 116.28) / 57.12, (50 - 103.53) / 57.375];
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(t.data[c * 224 * 224 + 1000] - expected[c]) < 1e-5);
    });

    it('header declaring 50000x50000 is refused before decoding', async () => {
      const started = Date.now();
      await assert.rejects(preprocess(hugePngHeader(50000, 50000)), isInputError(/pixel limit.*maxPixels/));
      await assert.rejects(preprocess(hugePngHeader(3000, 3000), { maxPixels: 1_000_000 }), isInputError(/pixel limit/));
      assert.ok(Date.now() - started < 5000);
    });

    it('missing file: message and .path name the file', async () => {
      const missing = path.join(tmp.dir, 'no-such-photo.jpg');
      await assert.rejects(
        preprocess(missing),
        (e: Error) => e instanceof ImageInputError && e.path === missing && e.message.includes(missing) && /missing/i.test(e.message),
      );
    });
  });

  describe('preprocessBatch', () => {
    it('reports each item, keeps order, carries the index of failures', async () => {
      const inputs: ImageInput[] = [PHOTOS.chelsea, Buffer.from('junk'), PHOTOS.coffee, 42 as unknown as ImageInput, PHOTOS.astronaut];
      const results = await preprocessBatch(inputs, { concurrency: 2 });
      assert.deepEqual(
        results.map((r) => [r.index, r.ok]),
        [
          [0, true],
          [1, false],
          [2, true],
          [3, false],
          [4, true],
        ],
      );
      const [r0, r1, r2, r3, r4] = results;
      assert.ok(r0.ok && r2.ok && r4.ok);
      assert.ok(mad(r0.tensor, ref('chelsea')) < 0.02);
      assert.ok(mad(r2.tensor, ref('coffee')) < 0.02);
      assert.ok(mad(r4.tensor, ref('astronaut')) < 0.02);
      assert.ok(!r1.ok && r1.error instanceof ImageInputError && r1.error.index === 1 && /#1/.test(r1.error.message));
      assert.ok(!r3.ok && r3.error instanceof TypeError && /inputs\[3\]/.test(r3.error.message));
    });

    it('validates inputs and options up front', async () => {
      await assert.rejects(preprocessBatch('a.jpg' as unknown as ImageInput[]), /Expected an array of image inputs for inputs/);
      await assert.rejects(preprocessBatch([PHOTOS.chelsea], { concurrency: 0 }), /for options\.concurrency/);
    });
  });

  describe('augment', () => {
    const opts: AugmentOptions = { colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4 } };

    it('is deterministic for a seed, differs across seeds, keeps the shape', async () => {
      const a = await augment(PHOTOS.coffee, opts, createRng(7));
      const b = await augment(PHOTOS.coffee, opts, createRng(7));
      const c = await augment(PHOTOS.coffee, opts, createRng(8));
      assert.deepEqual(a.shape, [1, 3, 224, 224]);
      assert.deepEqual(a.data, b.data);
      assert.notDeepEqual(a.data, c.data);
      const sized = await augment(PHOTOS.coffee, { size: [96, 128] }, createRng(1));
      assert.deepEqual(sized.shape, [1, 3, 96, 128]);
      const rng = createRng(3); // successive draws from one generator differ too
      assert.notDeepEqual((await augment(PHOTOS.coffee, opts, rng)).data, (await augment(PHOTOS.coffee, opts, rng)).data);
    });

    it('full-image crop + certain flip matches PIL resize + FLIP_LEFT_RIGHT', async () => {
      const r = catW / catH;
      const t = await augment(PHOTOS.chelsea, { randomResizedCrop: { scale: [1, 1], ratio: [r, r] }, hflip: 1 }, createRng(0));
      const m = mad(t, ref('chelsea-squash-flip'));
      assert.ok(m < 0.02, `MAD ${m}`);
    });

    it('validates its options and rng', async () => {
      await assert.rejects(augment(PHOTOS.coffee, { hflip: 2 }, createRng(0)), { name: 'RangeError', message: /for options\.hflip/ });
      await assert.rejects(augment(PHOTOS.coffee, { hflip: '1' as never }, createRng(0)), { name: 'TypeError', message: /for options\.hflip/ });
      await assert.rejects(augment(PHOTOS.coffee, { randomResizedCrop: { scale: [0.5, 0.1] } }, createRng(0)), {
        name: 'RangeError',
        message: /randomResizedCrop\.scale/,
      });
      await assert.rejects(augment(PHOTOS.coffee, { colorJitter: { brightness: -1 } }, createRng(0)), {
        name: 'RangeError',
        message: /options\.colorJitter\.brightness/,
      });
      await assert.rejects(augment(PHOTOS.coffee, {}, 5 as unknown as () => number), /for rng/);
    });
  });

  describe('labels', () => {
    it('IMAGENET_CLASSES equals torchvision _IMAGENET_CATEGORIES', async () => {
      const py = JSON.parse(
        await pythonCode('import json\nfrom torchvision.models._meta import _IMAGENET_CATEGORIES as c\nprint(json.dumps(list(c)))'),
      );
      assert.equal(IMAGENET_CLASSES.length, 1000);
      assert.deepEqual([...IMAGENET_CLASSES], py);
      assert.ok(Object.isFrozen(IMAGENET_CLASSES));
    });
  });
});
