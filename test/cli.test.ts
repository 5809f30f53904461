// The built command line (node dist/cli.js, or VGG_NATIVE_CLI) on real photos,
// with a checkpoint written by torch.save (test/fixtures/classify_reference.py)
// and PyTorch as the oracle: classify, features (.npy and JSON), summary,
// convert, info, weights, download (from a server on 127.0.0.1), exit codes.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { preprocess } from '../src';
import { FIXTURES } from './helpers/reference';
import { python, pythonCode, tempDir } from './helpers/python';
import { loopbackOnlyEnv, startWeightsServer, type WeightsServer } from './helpers/weights-server';
import { buildIfStale, CLI } from './helpers/cli';

const execFileP = promisify(execFile);
const SKI = '/usr/lib/python3/dist-packages/skimage/data';
const PHOTOS = [`${SKI}/chelsea.png`, `${SKI}/coffee.png`];
const NUM_CLASSES = 10;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Environment of every CLI run: its own weights cache, and no way off the machine (non-loopback requests go to a closed port). */
const cliEnv: Record<string, string> = { ...loopbackOnlyEnv() };

/** Runs `node dist/cli.js ...args`; never rejects, the exit code is part of the result. */
async function cli(...args: string[]): Promise<Result> {
  return cliWith({}, ...args);
}

/** cli() with extra environment variables. */
async function cliWith(env: Record<string, string>, ...args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [CLI, ...args], {
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, ...cliEnv, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** Exit status 2: the command was called wrongly. */
const USAGE = 2;

/** Exit status `code` (1: a failure, 2: a usage error) and one line, `vgg-native: ...`, matching `message`; no stack trace. */
function assertUserError(r: Result, message: RegExp, code = 1): void {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], /^vgg-native: /);
  assert.match(lines[0], message);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

// PyTorch: pool5 (stage5 averaged over H, W) of the saved model on given float32 inputs [N,3,224,224].
const POOL5_PY = `
import sys, os, json, collections, numpy as np, torch
sys.path.insert(0, ${JSON.stringify(FIXTURES)})
from mmcls_vgg import MmclsVGG
ckpt, inputs, n, npy = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(os.cpu_count())
sd = torch.load(ckpt, map_location='cpu')['state_dict']
model = MmclsVGG(11, num_classes=${NUM_CLASSES}, out_indices=(4,))
model.load_state_dict(collections.OrderedDict((k[len('backbone.'):], v) for k, v in sd.items()))
model.eval()
x = torch.from_numpy(np.fromfile(inputs, dtype='<f4').reshape(n, 3, 224, 224))
with torch.no_grad():
    ref = model(x)[0].mean(dim=(2, 3)).numpy()
ours = np.load(npy)
print(json.dumps({'shape': list(ours.shape), 'dtype': str(ours.dtype),
                  'rel': float(np.abs(ours - ref).max() / np.abs(ref).max())}))
`;

// torch.load(weights_only=True) of a converted file against the original checkpoint.
const CONVERTED_PY = `
import sys, json, torch
orig = torch.load(sys.argv[1], map_location='cpu')['state_dict']
out = {}
for f, layout in zip(sys.argv[2::2], sys.argv[3::2]):
    ck = torch.load(f, map_location='cpu', weights_only=True)
    sd = ck['state_dict'] if layout == 'mmcls' else ck
    info = {'keys': len(sd), 'classes': list(ck['meta'].get('CLASSES', [])) if layout == 'mmcls' else None}
    if layout == 'mmcls':
        info['equal'] = sorted(sd) == sorted(orig) and all(torch.equal(sd[k], orig[k]) for k in orig)
    else:
        # torchvision numbers every module in features: compare the parameters in order.
        a = [v for k, v in orig.items()]
        b = [v for k, v in sd.items()]
        info['equal'] = len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))
        info['first'] = next(iter(sd))
    out[layout] = info
print(json.dumps(out))
`;

describe('cli (node dist/cli.js)', function () {
  this.timeout(120_000);

  let tmp: ReturnType<typeof tempDir>;
  let ckpt: string;
  let ref: { classes: string[]; photos: Array<{ indices: number[]; probabilities: number[] }> };

  before(async function () {
    this.timeout(300_000);
    tmp = tempDir('vgg-cli-');
    cliEnv.VGG_NATIVE_HOME = path.join(tmp.dir, 'cache');
    const [, out] = await Promise.all([
      buildIfStale(),
      // A seed-fixed random vgg11 with 10 named classes, and PyTorch + PIL's top-5 for each photo.
      python(path.join(FIXTURES, 'classify_reference.py'), [tmp.dir, '11', String(NUM_CLASSES), '5', ...PHOTOS]),
    ]);
    ref = JSON.parse(out);
    ckpt = path.join(tmp.dir, 'model.pth');
  });
  after(() => tmp?.cleanup());

  it("classify --json: one line per photo, top-1 equals PyTorch's, labels from the checkpoint", async () => {
    const r = await cli('classify', '--json', '-w', ckpt, '--top-k', '3', '--batch-size', '2', ...PHOTOS);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, PHOTOS.length);
    lines.forEach((line, i) => {
      assert.equal(line.path, PHOTOS[i]);
      assert.equal(line.predictions.length, 3);
      assert.equal(line.predictions[0].index, ref.photos[i].indices[0], `${path.basename(PHOTOS[i])} top-1`);
      assert.equal(line.predictions[0].label, ref.classes[ref.photos[i].indices[0]]);
      // Our decoder is not PIL's (mean abs pixel difference ~0.004), so probabilities agree loosely.
      assert.ok(Math.abs(line.predictions[0].probability - ref.photos[i].probabilities[0]) < 5e-3);
    });
  });

  it('classify: a folder is walked; human output "path: label (p%) ..."; a bad image -> its error, exit 1', async () => {
    const dir = path.join(tmp.dir, 'photos');
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    fs.copyFileSync(PHOTOS[0], path.join(dir, 'b-chelsea.png'));
    fs.copyFileSync(PHOTOS[1], path.join(dir, 'sub', 'coffee.png'));
    fs.writeFileSync(path.join(dir, 'a-broken.jpg'), 'not a jpeg');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not an image, skipped');

    const r = await cli('classify', '-w', ckpt, '-k', '2', dir);
    assert.equal(r.code, 1);
    const out = r.stdout.trim().split('\n');
    assert.equal(out.length, 2, r.stdout);
    const label = (i: number, k: number): string => ref.classes[ref.photos[i].indices[k]];
    assert.match(out[0], new RegExp(`^${path.join(dir, 'b-chelsea.png')}: ${label(0, 0)} \\(\\d+\\.\\d%\\) ${label(0, 1)} \\(\\d+\\.\\d%\\)$`));
    assert.ok(out[1].startsWith(`${path.join(dir, 'sub', 'coffee.png')}: ${label(1, 0)} (`), out[1]);
    assert.match(r.stderr, /^vgg-native: .*a-broken\.jpg/m);
    assert.match(r.stderr, /1 of 3 images could not be classified/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);

    const j = await cli('classify', '--json', '-w', ckpt, '-k', '1', dir, path.join(tmp.dir, 'missing.png'));
    assert.equal(j.code, 1);
    const lines = j.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => path.basename(l.path)),
      ['a-broken.jpg', 'b-chelsea.png', 'coffee.png', 'missing.png'],
    );
    assert.ok(lines[0].error && !lines[0].predictions);
    assert.match(lines[3].error, /missing\.png/);
    assert.equal(lines[1].predictions[0].index, ref.photos[0].indices[0]);
  });

  it("features --out: an .npy numpy loads, [2, 512] float32, equal to PyTorch's pool5 (relative 1e-4)", async () => {
    const npy = path.join(tmp.dir, 'pool5.npy');
    const r = await cli('features', '-w', ckpt, '--layer', 'pool5', '--out', npy, ...PHOTOS);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote .*pool5\.npy: pool5 \[2, 512\] float32/);
    // PyTorch gets the very pixels our decoder made, so the comparison is of the network and the file.
    const pixels = await Promise.all(PHOTOS.map((p) => preprocess(p)));
    const inputs = path.join(tmp.dir, 'inputs.f32');
    fs.writeFileSync(inputs, Buffer.concat(pixels.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))));
    const check = JSON.parse(await pythonCode(POOL5_PY, [ckpt, inputs, String(PHOTOS.length), npy]));
    assert.deepEqual(check.shape, [2, 512]);
    assert.equal(check.dtype, 'float32');
    assert.ok(check.rel < 1e-4, `relative error ${check.rel}`);
  });

  it('features --normalize --json: unit rows, the .npy values, one JSON line per image', async () => {
    const npy = path.join(tmp.dir, 'fc7n.npy');
    assert.equal((await cli('features', '-w', ckpt, '-l', 'fc7', '-n', '-o', npy, ...PHOTOS)).code, 0);
    const r = await cli('features', '-w', ckpt, '-l', 'fc7', '--normalize', '--json', ...PHOTOS);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => l.path),
      PHOTOS,
    );
    const check = JSON.parse(
      await pythonCode(
        'import sys, json, numpy as np\na = np.load(sys.argv[1]); b = np.array(json.loads(sys.argv[2]), dtype=np.float32)\n' +
          'print(json.dumps({"shape": list(a.shape), "norms": np.linalg.norm(a, axis=1).tolist(), "diff": float(np.abs(a - b).max())}))',
        [npy, JSON.stringify(lines.map((l) => l.features))],
      ),
    );
    assert.deepEqual(check.shape, [2, 4096]);
    assert.deepEqual(lines[0].shape, [4096]);
    check.norms.forEach((n: number) => assert.ok(Math.abs(n - 1) < 1e-5, `norm ${n}`));
    assert.ok(check.diff < 1e-6, `JSON vs .npy: ${check.diff}`);
  });

  it("summary prints vgg16's 138.36 M parameters and 15.50 G multiply-adds (mmcls's table)", async () => {
    const r = await cli('summary', '--arch', 'vgg16');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^vgg16: 138\.36 M parameters, 15\.50 G multiply-adds at 224x224$/m);
    assert.match(r.stdout, /^classifier\.6 +Linear/m);
    const j = JSON.parse((await cli('summary', '-a', 'vgg11_bn', '--json')).stdout);
    assert.equal(j.arch, 'vgg11_bn');
    assert.equal(j.params, 132868840);
  });

  it('convert writes .pth files torch.load(weights_only=True) reads, equal to the original (both layouts)', async () => {
    const mm = path.join(tmp.dir, 'mm.pth');
    const tv = path.join(tmp.dir, 'tv.pth');
    const a = await cli('convert', '-w', ckpt, mm);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stdout, /wrote .*mm\.pth \(vgg11, mmcls layout/);
    const b = await cli('convert', '-w', ckpt, '--layout', 'torchvision', tv);
    assert.equal(b.code, 0, b.stderr);
    const check = JSON.parse(await pythonCode(CONVERTED_PY, [ckpt, mm, 'mmcls', tv, 'torchvision']));
    assert.ok(check.mmcls.equal, JSON.stringify(check.mmcls));
    assert.deepEqual(check.mmcls.classes, ref.classes);
    assert.ok(check.torchvision.equal, JSON.stringify(check.torchvision));
    assert.equal(check.torchvision.first, 'features.0.weight');
    fs.rmSync(mm);
    fs.rmSync(tv);
  });

  it('finetune then evaluate on a digits CSV: report JSON, a .pth PyTorch reads with the class names', async function () {
    this.timeout(600_000);
    const digits = path.join(tmp.dir, 'digits');
    await python(path.join(FIXTURES, 'make_digits.py'), [digits, '32']);
    // 60 rows (6 per class in the original order): a quick run, not an accuracy test.
    const rows = fs.readFileSync(path.join(digits, 'index.csv'), 'utf8').trim().split('\n');
    const header = rows[0];
    const perClass = new Map<string, number>();
    const kept = rows.slice(1).filter((r) => {
      const label = r.split(',').pop()!;
      const n = perClass.get(label) ?? 0;
      perClass.set(label, n + 1);
      return n < 6;
    });
    const csv = path.join(digits, 'small.csv');
    fs.writeFileSync(csv, [header, ...kept].join('\n'));
    const out = path.join(tmp.dir, 'tuned.pth');
    const r = await cli('finetune', '-a', 'vgg11', csv, '-o', out, '-e', '1', '-b', '12', '-s', '32', '--no-augment', '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(report.epochs.length, 1);
    assert.ok(Number.isFinite(report.epochs[0].trainLoss));
    assert.deepEqual(report.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const meta = JSON.parse(
      await pythonCode(
        "import json, sys, torch; c = torch.load(sys.argv[1], weights_only=True); print(json.dumps({'classes': list(c['meta']['CLASSES']), 'head': list(c['state_dict']['backbone.classifier.6.weight'].shape), 'size': c['meta']['input_size'], 'resize': c['meta']['input_resize']}))",
        [out],
      ),
    );
    assert.deepEqual(meta, { classes: report.classes, head: [10, 4096], size: 32, resize: 'squash' });
    // evaluate takes the 32x32 squash pipeline from the checkpoint's meta.
    const e = await cli('evaluate', '-w', out, csv, '--json');
    assert.equal(e.code, 0, e.stderr);
    const ev = JSON.parse(e.stdout.trim());
    assert.equal(ev.count, 60);
    assert.equal(
      ev.confusion.flat().reduce((a: number, b: number) => a + b, 0),
      60,
    );
    assertUserError(await cli('finetune', '-a', 'vgg11', path.join(tmp.dir, 'missing-folder'), '-o', out), /missing-folder/);
  });

  it("explain -o: a 224x224 PNG overlay of the top-1 class's Grad-CAM (PyTorch's top-1); a bad --layer exits 2", async () => {
    const out = path.join(tmp.dir, 'cam.png');
    const r = await cli('explain', '-w', ckpt, PHOTOS[0], '-o', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout.trim());
    assert.equal(result.classIndex, ref.photos[0].indices[0]);
    assert.equal(result.label, ref.classes[ref.photos[0].indices[0]]);
    // As classify's: our decoder is not PIL's, so probabilities agree loosely.
    assert.ok(Math.abs(result.probability - ref.photos[0].probabilities[0]) < 5e-3);
    const png = fs.readFileSync(out);
    assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
    assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [224, 224]);
    assertUserError(
      await cli('explain', '-w', ckpt, PHOTOS[0], '-o', out, '--layer', 'fc7'),
      /--layer.*'fc7' is invalid\. Allowed choices are stage1/,
      USAGE,
    );
  });

  it('runtime prints JSON with the LibTorch version', async () => {
    const r = await cli('runtime');
    assert.equal(r.code, 0, r.stderr);
    assert.match(JSON.parse(r.stdout).torchVersion, /^\d+\.\d+/);
  });

  // Issue 11: a usage error (how the command was called) now exits 2; a failure of the work still exits 1.
  it('bad arguments: exit 2 (usage) or 1 (failure) with one clear line, no stack trace', async () => {
    assertUserError(await cli('summary', '-a', 'vgg15'), /argument 'vgg15' is invalid.*vgg11, vgg13, vgg16/, USAGE);
    assertUserError(await cli('classify', '-w', path.join(tmp.dir, 'nope.pth'), PHOTOS[0]), /nope\.pth/);
    assertUserError(await cli('convert', '-w', path.join(tmp.dir, 'nope.pth'), path.join(tmp.dir, 'x.pth')), /not found.*nope\.pth/);
    assertUserError(await cli('classify', '-a', 'vgg11', '--top-k', '0', PHOTOS[0]), /--top-k must be an integer >= 1/, USAGE);
    assertUserError(await cli('classify', PHOTOS[0]), /classify needs --weights/, USAGE);
    assertUserError(await cli('features', '-w', ckpt, PHOTOS[0]), /features needs --out/, USAGE);
    assertUserError(
      await cli('features', '-w', ckpt, '-l', 'fc9', '--json', PHOTOS[0]),
      /--layer.*'fc9' is invalid\. Allowed choices are .*pool5/,
      USAGE,
    );
    assertUserError(await cli('features', '-w', ckpt, '--json', path.join(tmp.dir, 'missing.png')), /missing\.png/);
    assertUserError(await cli('convert', path.join(tmp.dir, 'x.pth')), /convert needs --weights/, USAGE);
    assertUserError(await cli('classify'), /missing required argument 'images'/, USAGE);
    assertUserError(await cli('frobnicate'), /unknown command 'frobnicate'/, USAGE);
    assertUserError(await cli('classify', '-w', ckpt, '-a', 'vgg16', PHOTOS[0]), /vgg16.*holds a vgg11/);
    // New in issue 11.
    assertUserError(await cli('summary', '-a', 'vgg11', '--model', 'vgg16'), /--arch vgg11 and --model vgg16 disagree/, USAGE);
    assertUserError(await cli('classify', '-w', 'onnx-zoo', '--model', 'vgg11', PHOTOS[0]), /publishes vgg11.*'mmcls', 'torchvision'/, USAGE);
    assertUserError(await cli('classify', '-d', 'gpu', '-a', 'vgg11', PHOTOS[0]), /options\.device/, USAGE);
    assertUserError(await cli('download', 'vgg15.mmcls'), /unknown weights 'vgg15\.mmcls'/, USAGE);
    assertUserError(await cli('download', 'vgg11', '--source', 'onnx-zoo'), /onnx-zoo publishes no vgg11/, USAGE);
    assertUserError(await cli('download', 'vgg11', '--source', 'caffe'), /argument 'caffe' is invalid/, USAGE);
    assertUserError(await cli('weights', '--source', 'caffe'), /--source must be one of mmcls, torchvision, onnx-zoo/, USAGE);
    assertUserError(await cli('info', '--keys', '--bogus'), /unknown option '--bogus'/, USAGE);
    assertUserError(await cli('info', path.join(tmp.dir, 'nope.pth')), /not found.*nope\.pth/);
  });

  it('--verbose (or VGG_NATIVE_DEBUG) adds the stack after the one line; --help exits 0', async () => {
    const r = await cli('classify', '--verbose', '-w', path.join(tmp.dir, 'nope.pth'), PHOTOS[0]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^vgg-native: weights file not found: .*nope\.pth\nCheckpointError: .*\n\s+at /);
    const d = await cliWith({ VGG_NATIVE_DEBUG: '1' }, 'info', path.join(tmp.dir, 'nope.pth'));
    assert.match(d.stderr, /\n\s+at /);
    const h = await cli('download', '--help');
    assert.equal(h.code, 0);
    assert.match(h.stdout, /Usage: vgg-native download/);
  });

  it('info: the runtime (human and --json); runtime stays a JSON alias', async () => {
    const human = await cli('info');
    assert.equal(human.code, 0, human.stderr);
    for (const row of ['LibTorch', 'CUDA', 'devices', 'threads', 'CPU ISA', 'oneDNN', 'gemv kernel', 'weights cache'])
      assert.match(human.stdout, new RegExp(`^${row} +\\S`, 'm'), row);
    const json = JSON.parse((await cli('info', '--json')).stdout);
    assert.match(json.torchVersion, /^\d+\.\d+/);
    assert.equal(json.weightsCache, cliEnv.VGG_NATIVE_HOME);
    assert.ok(['avx512', 'avx2', 'none'].includes(json.gemvKernel));
    assert.deepEqual(Object.keys(JSON.parse((await cli('runtime')).stdout)).sort(), Object.keys(json).sort());
  });

  it('info <weights>: format, layout, architecture, parameters, labels, meta; --keys lists the tensors; --json parses', async () => {
    const human = await cli('info', ckpt);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^format +pth-(zip|legacy)$/m);
    assert.match(human.stdout, /^layout +mmcls$/m);
    assert.match(human.stdout, /^arch +vgg11$/m);
    assert.match(human.stdout, new RegExp(`^classes +10 \\(${ref.classes.slice(0, 5).join(', ')}, \\.\\.\\.\\)$`, 'm'));
    assert.match(human.stdout, /^parameters +128\.81 M \(128,807,306\) in 22 tensors$/m);
    const j = JSON.parse((await cli('info', ckpt, '--keys', '--json')).stdout);
    assert.deepEqual([j.arch, j.layout, j.numClasses, j.parameters, j.tensors], ['vgg11', 'mmcls', 10, 128807306, 22]);
    assert.deepEqual(j.labels, ref.classes);
    assert.equal(j.keys.length, 22);
    assert.deepEqual(j.keys[0], { name: 'features.0.conv.weight', shape: [64, 3, 3, 3], dtype: 'float32' });
    assert.deepEqual(j.keys.at(-1), { name: 'classifier.6.bias', shape: [10], dtype: 'float32' });
    const keys = await cli('info', ckpt, '--keys');
    assert.match(keys.stdout, /^classifier\.6\.weight +\[10,4096\] +float32$/m);
  });

  it('weights: the registry as a table and as JSON; --model/--source filter it', async () => {
    const table = await cli('weights');
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^vgg16_bn\.mmcls +vgg16_bn +mmcls +73\.74 +91\.66 +~\d+\.\d MiB +no$/m);
    assert.match(table.stdout, /^vgg19_bn\.onnx-zoo +vgg19_bn +onnx-zoo +73\.83 +91\.79 +548\.1 MiB +no$/m);
    assert.match(table.stdout, /^vgg11\.timm +vgg11 +timm +69\.05 +88\.63 +~\d+\.\d MiB +no$/m);
    const all = JSON.parse((await cli('weights', '--json')).stdout);
    assert.equal(all.length, 28);
    const some = JSON.parse((await cli('weights', '--model', 'vgg16', '--source', 'torchvision', '--json')).stdout);
    assert.deepEqual(
      some.map((e: { key: string }) => e.key),
      ['vgg16.torchvision'],
    );
    assert.equal(some[0].url, 'https://download.pytorch.org/models/vgg16-397923af.pth');
    // --quiet is global: before or after the command.
    for (const args of [
      ['--quiet', 'weights', '--json'],
      ['weights', '-q', '--json'],
    ])
      assert.equal(JSON.parse((await cli(...args)).stdout).length, 28);
  });

  describe('with a weights server on 127.0.0.1', () => {
    let server: WeightsServer;
    let hubEnv: Record<string, string>;
    const KEY = 'vgg11-ten.test';

    before(async function () {
      this.timeout(120_000);
      const body = fs.readFileSync(ckpt);
      const hash = createHash('sha256').update(body).digest('hex');
      server = await startWeightsServer(new Map([[`/vgg/ten-${hash.slice(0, 8)}.pth`, { body }]]));
      const registry = path.join(tmp.dir, 'registry.json');
      // The URL's host never resolves; VGG_NATIVE_MIRROR sends it to the local server.
      fs.writeFileSync(
        registry,
        JSON.stringify([{ key: KEY, arch: 'vgg11', url: `https://weights.invalid/vgg/ten-${hash.slice(0, 8)}.pth`, sha256: hash, numClasses: 10 }]),
      );
      hubEnv = { VGG_NATIVE_REGISTRY: registry, VGG_NATIVE_MIRROR: server.origin, VGG_NATIVE_HOME: path.join(tmp.dir, 'hub-cache') };
      server.routes.set('/gone.pth', { status: 404 });
    });
    after(async () => {
      await server?.close();
      fs.rmSync(path.join(tmp.dir, 'hub-cache'), { recursive: true, force: true });
    });

    it('download --json fetches into the cache once (JSON lines); then classify --weights <key> runs from the cache', async () => {
      const first = await cliWith(hubEnv, 'download', KEY, '--json');
      assert.equal(first.code, 0, first.stderr);
      const line = JSON.parse(first.stdout);
      assert.equal(line.key, KEY);
      assert.equal(line.downloaded, true);
      assert.equal(line.file, path.join(hubEnv.VGG_NATIVE_HOME, 'weights', path.basename(line.file)));
      assert.equal(fs.statSync(line.file).size, fs.statSync(ckpt).size);
      const again = await cliWith(hubEnv, 'download', KEY);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, new RegExp(`^${KEY.replace(/\./g, '\\.')}: .* \\(cached, 491\\.\\d MiB\\)$`, 'm'));
      const c = await cliWith(hubEnv, 'classify', '--weights', KEY, '--model', 'vgg11', '-k', '1', '--json', PHOTOS[0]);
      assert.equal(c.code, 0, c.stderr);
      assert.equal(JSON.parse(c.stdout).predictions[0].index, ref.photos[0].indices[0]);
      const info = JSON.parse((await cliWith(hubEnv, 'info', KEY, '--json')).stdout);
      assert.equal(info.registry.key, KEY);
      assert.equal(info.file, line.file);
      assert.equal(server.seen.length, 1, 'downloaded once, everything else from the cache');
    });

    it('a failed download exits 1 with one line naming the URL and the cache path; --json reports it as a line', async () => {
      const url = `${server.origin}/gone.pth`;
      const r = await cliWith(hubEnv, 'download', url);
      assertUserError(r, new RegExp(`${url.replace(/[.]/g, '\\.')} does not exist \\(HTTP 404\\).*${hubEnv.VGG_NATIVE_HOME}`));
      const j = await cliWith(hubEnv, 'download', '--json', url, KEY);
      assert.equal(j.code, 1);
      const lines = j.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.deepEqual(
        lines.map((l) => l.code ?? l.key),
        ['NOT_FOUND', KEY],
      );
      // Offline with nothing cached: --weights imagenet fails at once, saying where the file would go and what to do.
      const empty = path.join(tmp.dir, 'empty-cache');
      const off = await cliWith({ VGG_NATIVE_OFFLINE: '1', VGG_NATIVE_HOME: empty }, 'classify', '-w', 'imagenet', '-m', 'vgg16_bn', PHOTOS[0]);
      assertUserError(
        off,
        new RegExp(
          `VGG_NATIVE_OFFLINE is set .*vgg16_bn_batch256_imagenet_20210208-7e55cd29\\.pth is not in the cache.*pass its path.*${empty}/weights/`,
        ),
      );
    });
  });

  it('--model everywhere --arch is; convert --json parses', async () => {
    const j = JSON.parse((await cli('summary', '--model', 'vgg11_bn', '--json')).stdout);
    assert.equal(j.arch, 'vgg11_bn');
    const out = path.join(tmp.dir, 'conv.pth');
    const r = await cli('convert', '-w', ckpt, '--model', 'vgg11', '--json', out);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { out, arch: 'vgg11', layout: 'mmcls', bytes: fs.statSync(out).size });
    fs.rmSync(out);
  });
});
