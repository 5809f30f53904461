// Layout recognition and architecture inference. The torchvision keys and
// shapes come from torchvision itself (the oracle); the mmcls numbering from
// FORMATS.md (mmcls is not installed here).
import { strict as assert } from 'node:assert';
import { pythonCode } from './helpers/python';
import { checkAgainst, describeCheck, expectedShapes, interpretCheckpoint } from '../src/weights/layout';
import { CheckpointError } from '../src/weights/errors';
import { ARCHITECTURES, parseArch } from '../src/arch';

interface Fake {
  shape: number[];
  id: string;
}
const fake = (id: string, shape: number[]): Fake => ({ id, shape });

// Shapes and keys of every torchvision VGG, without initialising weights (fast).
const TORCHVISION_KEYS = `
import json, torch, torchvision
for m in (torch.nn.Linear, torch.nn.Conv2d, torch.nn.BatchNorm2d):
    m.reset_parameters = lambda self: None
for f in ('kaiming_normal_', 'constant_', 'normal_'):
    setattr(torch.nn.init, f, lambda *a, **k: None)
out = {}
for arch in ${JSON.stringify([...ARCHITECTURES])}:
    sd = getattr(torchvision.models, arch)(num_classes=7).state_dict()
    out[arch] = [[k, list(v.shape)] for k, v in sd.items()]
print(json.dumps(out))
`;

function mmclsState(arch: (typeof ARCHITECTURES)[number], numClasses: number, prefix = 'backbone.'): Map<string, Fake> {
  const m = new Map<string, Fake>();
  for (const { name, shape } of expectedShapes(parseArch(arch), numClasses)) m.set(prefix + name, fake(name, shape));
  return m;
}

describe('layout', function () {
  let tv: Record<string, Array<[string, number[]]>>;
  before(async () => {
    tv = JSON.parse(await pythonCode(TORCHVISION_KEYS));
  });

  for (const arch of ARCHITECTURES) {
    it(`torchvision ${arch}: infers the architecture and maps onto every canonical key with the right shape`, () => {
      const sd = new Map(tv[arch].map(([k, s]) => [k, fake(k, s)]));
      const ck = interpretCheckpoint<Fake>(sd, `${arch}.pth`);
      assert.equal(ck.layout, 'torchvision');
      assert.deepEqual(ck.arch, parseArch(arch));
      assert.equal(ck.numClasses, 7);
      const expected = expectedShapes(ck.arch, 7);
      assert.deepEqual(
        [...ck.tensors.keys()],
        expected.map((e) => e.name),
      );
      const check = checkAgainst(expected, ck.tensors, { strict: true });
      assert.ok(check.ok, JSON.stringify(check));
    });
  }

  it('torchvision vgg16 / vgg16_bn indices from FORMATS.md map to mmcls indices', () => {
    const mm = [0, 1, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 16];
    const plain = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28];
    const bn = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40];
    const a = interpretCheckpoint<Fake>(new Map(tv.vgg16.map(([k, s]) => [k, fake(k, s)])));
    const b = interpretCheckpoint<Fake>(new Map(tv.vgg16_bn.map(([k, s]) => [k, fake(k, s)])));
    mm.forEach((m, i) => {
      assert.equal(a.tensors.get(`features.${m}.conv.weight`)!.id, `features.${plain[i]}.weight`);
      assert.equal(b.tensors.get(`features.${m}.conv.bias`)!.id, `features.${bn[i]}.bias`);
      assert.equal(b.tensors.get(`features.${m}.bn.running_var`)!.id, `features.${bn[i] + 1}.running_var`);
    });
  });

  for (const arch of ARCHITECTURES) {
    it(`mmcls ${arch}: strips backbone. and infers the architecture`, () => {
      const ck = interpretCheckpoint<Fake>(
        new Map([
          ['meta', new Map<string, unknown>([['CLASSES', ['a', 'b', 'c']]])],
          ['state_dict', mmclsState(arch, 3)],
        ]),
      );
      assert.equal(ck.layout, 'mmcls');
      assert.deepEqual(ck.arch, parseArch(arch));
      assert.equal(ck.numClasses, 3);
      assert.deepEqual(ck.labels, ['a', 'b', 'c']);
      assert.equal(ck.tensors.get('features.0.conv.weight')!.id, 'features.0.conv.weight');
    });
  }

  it('unwraps a bare state_dict, {state_dict}, {model}, {meta, state_dict} and DataParallel module. prefixes', () => {
    const sd = mmclsState('vgg13_bn', 5);
    for (const obj of [
      sd,
      new Map([['state_dict', sd]]),
      new Map([['model', sd]]),
      new Map<string, unknown>([
        ['meta', new Map()],
        ['state_dict', sd],
      ]),
    ]) {
      assert.deepEqual(interpretCheckpoint<Fake>(obj).arch, { depth: 13, batchNorm: true });
    }
    const dp = new Map([...mmclsState('vgg19', 0, '')].map(([k, v]) => [`module.${k}`, v]));
    const ck = interpretCheckpoint<Fake>(dp);
    assert.deepEqual(ck.arch, { depth: 19, batchNorm: false });
    assert.equal(ck.numClasses, 0, 'no classifier: numClasses 0');
    assert.ok(checkAgainst(expectedShapes(ck.arch, 0), ck.tensors, { strict: true }).ok);
  });

  it('meta becomes plain objects; unknown keys are kept and reported as unexpected', () => {
    const sd = mmclsState('vgg11', 2);
    sd.set('head.extra.weight', fake('x', [1]));
    const meta = new Map<string, unknown>([
      ['config', 'x = 1'],
      ['nested', new Map([['a', [1, new Map([['b', 2]])]]])],
    ]);
    const ck = interpretCheckpoint<Fake>(
      new Map<string, unknown>([
        ['meta', meta],
        ['state_dict', sd],
      ]),
    );
    assert.deepEqual(JSON.parse(JSON.stringify(ck.meta)), { config: 'x = 1', nested: { a: [1, { b: 2 }] } });
    assert.equal(ck.tensors.get('head.extra.weight')!.id, 'x');
    const check = checkAgainst(expectedShapes(ck.arch, 2), ck.tensors, { strict: true });
    assert.deepEqual(check.unexpected, ['head.extra.weight']);
    assert.equal(check.ok, false);
    assert.equal(checkAgainst(expectedShapes(ck.arch, 2), ck.tensors, { strict: false }).ok, true);
  });

  it('checkAgainst lists missing, unexpected and mismatched keys together', () => {
    const got = new Map(expectedShapes({ depth: 11, batchNorm: true }, 10).map((e) => [e.name, fake(e.name, e.shape)] as const));
    got.delete('features.0.conv.bias');
    got.delete('features.0.bn.num_batches_tracked'); // allowed: pre-0.4.1 BN checkpoints lack it
    got.set('classifier.6.weight', fake('w', [1000, 4096]));
    got.set('features.99.conv.weight', fake('u', [1]));
    const expected = expectedShapes({ depth: 11, batchNorm: true }, 10);
    const c = checkAgainst(expected, got, { strict: true });
    assert.deepEqual(c.missing, ['features.0.conv.bias']);
    assert.deepEqual(c.unexpected, ['features.99.conv.weight']);
    assert.deepEqual(c.mismatched, [{ name: 'classifier.6.weight', expected: [10, 4096], got: [1000, 4096] }]);
    assert.match(
      describeCheck(c, 'x.pth', { strict: true }),
      /^Checkpoint x\.pth does not fit the model: missing 1: features\.0\.conv\.bias; shape mismatch 1: classifier\.6\.weight expected \[10, 4096\] but got \[1000, 4096\]; unexpected 1: features\.99\.conv\.weight$/,
    );
    assert.deepEqual(checkAgainst(expected, got, { strict: true, allowMissingNumBatchesTracked: false }).missing, [
      'features.0.conv.bias',
      'features.0.bn.num_batches_tracked',
    ]);
  });

  it('unknown layouts get a clear error naming keys found', () => {
    const resnet = new Map([
      ['conv1.weight', fake('a', [64, 3, 7, 7])],
      ['bn1.weight', fake('b', [64])],
      ['fc.weight', fake('c', [1000, 2048])],
    ]);
    assert.throws(
      () => interpretCheckpoint(resnet, 'resnet.pth'),
      (e: unknown) =>
        e instanceof CheckpointError && e.code === 'UNKNOWN_LAYOUT' && /resnet\.pth .*conv1\.weight, bn1\.weight, fc\.weight/.test(e.message),
    );
    const sd = mmclsState('vgg16', 10);
    sd.delete('backbone.features.16.conv.weight');
    assert.throws(() => interpretCheckpoint(sd, 'cut.pth'), /12 convolutions in stages of \(2, 2, 3, 3, 2\), which is not VGG-11\/13\/16\/19/);
    assert.throws(() => interpretCheckpoint([1, 2], 'list.pth'), /list\.pth holds a list, not a state_dict/);
    assert.throws(
      () => interpretCheckpoint(new Map([['features.0.conv.weight', 'nope']]), 'str.pth'),
      /value of 'features\.0\.conv\.weight' is not a tensor/,
    );
  });

  it("drops DataParallel's module. segment wherever PyTorch put it (whole model, or only model.features)", async () => {
    // Keys as PyTorch writes them: DataParallel around the features only, and around everything.
    const wrapped = JSON.parse(
      await pythonCode(`
import json, torch, torchvision
m = torchvision.models.vgg11_bn(num_classes=7)
m.features = torch.nn.DataParallel(m.features)
inner = [[k, list(v.shape)] for k, v in m.state_dict().items()]
outer = [[k, list(v.shape)] for k, v in torch.nn.DataParallel(torchvision.models.vgg13(num_classes=7)).state_dict().items()]
print(json.dumps({'inner': inner, 'outer': outer}))
`),
    ) as Record<'inner' | 'outer', Array<[string, number[]]>>;
    assert.ok(
      wrapped.inner.some(([k]) => k.startsWith('features.module.0.')),
      'PyTorch wrote features.module.* keys',
    );
    for (const [which, arch] of [
      ['inner', 'vgg11_bn'],
      ['outer', 'vgg13'],
    ] as const) {
      const sd = new Map(wrapped[which].map(([k, s]) => [k, fake(k, s)]));
      const ck = interpretCheckpoint<Fake>(sd, `${which}.pth`);
      assert.deepEqual(ck.arch, parseArch(arch));
      const check = checkAgainst(expectedShapes(ck.arch, 7), ck.tensors, { strict: true });
      assert.ok(check.ok, JSON.stringify(check));
    }
    const first = interpretCheckpoint<Fake>(new Map(wrapped.inner.map(([k, s]) => [k, fake(k, s)])));
    assert.equal(first.tensors.get('features.0.conv.weight')!.id, 'features.module.0.weight');
    assert.equal(first.tensors.get('features.0.bn.running_var')!.id, 'features.module.1.running_var');
  });
});
