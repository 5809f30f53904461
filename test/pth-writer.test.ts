// Writer against PyTorch as the oracle: torch.load(weights_only=True) must read
// what we write, with the same keys, values and meta, and torchvision's VGG
// must accept the state_dict with load_state_dict(strict=True).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { pythonCode, tempDir } from './helpers/python';
import { TensorValue, writePth } from '../src/weights/pth/writer';
import { materialize, readPth, type TensorRef } from '../src/weights/pth';
import { CheckpointError } from '../src/weights/errors';
import { STAGE_BLOCKS, STAGE_WIDTHS } from '../src/arch';

const CHECK = `
import sys, json, zlib, torch, torchvision, numpy as np
def crc(t):
    a = t.float() if t.is_floating_point() else t.long()
    return zlib.crc32(a.contiguous().numpy().tobytes()) & 0xFFFFFFFF
ck = torch.load(sys.argv[1], weights_only=True)
sd = ck['state_dict']
out = {'sdType': type(sd).__name__, 'keys': list(sd.keys()), 'meta': ck['meta'],
       'crc': {k: crc(v) for k, v in sd.items()}, 'dtype': {k: str(v.dtype) for k, v in sd.items()},
       'shape': {k: list(v.shape) for k, v in sd.items()}}
if len(sys.argv) > 2:
    m = getattr(torchvision.models, sys.argv[2])(num_classes=int(sys.argv[3]))
    r = m.load_state_dict(sd, strict=True)
    out['loaded'] = len(r.missing_keys) == 0 and len(r.unexpected_keys) == 0
print(json.dumps(out))
`;

/** Deterministic pseudo-random floats (xorshift), so failures reproduce. */
function fill(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}
const crcOf = (a: Float32Array | BigInt64Array): number => zlib.crc32(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)) >>> 0;

/** torchvision VGG state_dict names and shapes (features.N counts conv, [bn], relu, pool). */
function torchvisionState(depth: 11 | 13 | 16 | 19, bn: boolean, classes: number): Map<string, TensorValue> {
  const sd = new Map<string, TensorValue>();
  let ix = 0;
  let cin = 3;
  let seed = 1;
  STAGE_BLOCKS[depth].forEach((blocks, stage) => {
    const c = STAGE_WIDTHS[stage];
    for (let b = 0; b < blocks; b++) {
      sd.set(`features.${ix}.weight`, new TensorValue('float32', [c, cin, 3, 3], fill(c * cin * 9, seed++)));
      sd.set(`features.${ix}.bias`, new TensorValue('float32', [c], fill(c, seed++)));
      if (bn) {
        for (const s of ['weight', 'bias', 'running_mean', 'running_var'])
          sd.set(`features.${ix + 1}.${s}`, new TensorValue('float32', [c], fill(c, seed++)));
        sd.set(`features.${ix + 1}.num_batches_tracked`, new TensorValue('int64', [], BigInt64Array.of(4242n)));
      }
      ix += bn ? 3 : 2;
      cin = c;
    }
    ix += 1;
  });
  for (const [i, o, n] of [
    [0, 4096, 25088],
    [3, 4096, 4096],
    [6, classes, 4096],
  ]) {
    sd.set(`classifier.${i}.weight`, new TensorValue('float32', [o, n], fill(o * n, seed++)));
    sd.set(`classifier.${i}.bias`, new TensorValue('float32', [o], fill(o, seed++)));
  }
  return sd;
}

const META = {
  CLASSES: ['cat', 'dog', 'naïve ☃'],
  config: "model = dict(type='ImageClassifier')\n",
  epoch: 12,
  big: 2 ** 40,
  negative: -70000,
  huge: 2n ** 70n,
  flag: true,
  none: null,
  nested: new Map<string, unknown>([
    ['a', [1, 2, [3]]],
    ['b', {}],
  ]),
};

describe('pth-writer', function () {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  it('vgg11_bn state_dict + meta: torch.load(weights_only=True) and torchvision load_state_dict(strict)', async () => {
    const sd = torchvisionState(11, true, 10);
    const file = path.join(tmp.dir, 'vgg11_bn.pth');
    await writePth(file, { meta: META, state_dict: sd });
    const out = JSON.parse(await pythonCode(CHECK, [file, 'vgg11_bn', '10']));
    assert.equal(out.sdType, 'OrderedDict');
    assert.deepEqual(out.keys, [...sd.keys()]);
    assert.equal(out.loaded, true);
    assert.deepEqual(out.meta, {
      CLASSES: ['cat', 'dog', 'naïve ☃'],
      config: META.config,
      epoch: 12,
      big: 2 ** 40,
      negative: -70000,
      huge: 2 ** 70,
      flag: true,
      none: null,
      nested: { a: [1, 2, [3]], b: {} },
    });
    for (const [k, t] of sd) {
      assert.equal(out.crc[k], crcOf(t.data), `${k} values`);
      assert.deepEqual(out.shape[k], t.shape, `${k} shape`);
      assert.equal(out.dtype[k], t.dtype === 'float32' ? 'torch.float32' : 'torch.int64');
    }
    // Our reader reads it back too, with 64-byte aligned storages.
    const back = (await readPth(file)).object as Map<string, Map<string, TensorRef>>;
    const ref = back.get('state_dict')!.get('features.1.num_batches_tracked')!;
    assert.deepEqual([...(await materialize(ref))], [4242n]);
    for (const r of back.get('state_dict')!.values()) assert.equal(r.byteOffset % 64, 0);
  });

  it('ZIP64 records (forced) are read by torch and by Python zipfile with CRCs intact', async () => {
    const file = path.join(tmp.dir, 'small64.pth');
    const sd = new Map([
      ['w', new TensorValue('float32', [2, 3], fill(6, 7))],
      ['n', new TensorValue('int64', [2], BigInt64Array.of(-5n, 2n ** 40n))],
    ]);
    await writePth(file, { meta: {}, state_dict: sd }, { forceZip64: true });
    const out = JSON.parse(await pythonCode(`${CHECK}\nimport zipfile\nassert zipfile.ZipFile(sys.argv[1]).testzip() is None`, [file]));
    assert.equal(out.crc.w, crcOf(sd.get('w')!.data));
    assert.equal(out.crc.n, crcOf(sd.get('n')!.data));
    const names = JSON.parse(await pythonCode('import sys,zipfile,json;print(json.dumps(zipfile.ZipFile(sys.argv[1]).namelist()))', [file]));
    assert.deepEqual(names, ['small64/data.pkl', 'small64/byteorder', 'small64/data/0', 'small64/data/1', 'small64/version']);
  });

  it('floats in meta are BINFLOAT (read by torch.load without weights_only)', async () => {
    const file = path.join(tmp.dir, 'floats.pth');
    await writePth(
      file,
      new Map<string, unknown>([
        ['lr', 0.125],
        ['w', new TensorValue('float32', [1], Float32Array.of(1.5))],
      ]),
    );
    const out = await pythonCode('import sys,torch;d=torch.load(sys.argv[1]);print(d["lr"], d["w"].tolist(), type(d).__name__)', [file]);
    assert.equal(out.trim(), '0.125 [1.5] OrderedDict');
  });

  it('is atomic: a failure leaves neither a temp file nor a changed target', async () => {
    const file = path.join(tmp.dir, 'target.pth');
    fs.writeFileSync(file, 'old');
    await assert.rejects(
      writePth(file, { bad: () => 1 }),
      (e: unknown) => e instanceof CheckpointError && e.code === 'BAD_VALUE' && /at the checkpoint\.bad/.test(e.message),
    );
    await assert.rejects(
      writePth(file, { t: new TensorValue('float32', [2, 2], new Float32Array(3)) }),
      /shape \[2, 2\] \(4 elements\) but 3 values/,
    );
    await assert.rejects(writePth(path.join(tmp.dir, 'no-such-dir', 'x.pth'), {}), /ENOENT/);
    assert.equal(fs.readFileSync(file, 'utf8'), 'old');
    assert.deepEqual(
      fs.readdirSync(tmp.dir).filter((f) => f.includes('.tmp-')),
      [],
    );
  });
});
