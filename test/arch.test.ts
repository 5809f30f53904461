// The one architecture table (src/arch.ts) against the two things it must
// describe: our native model (its state_dict names and shapes) and
// torchvision's own VGG (keys, shapes, and the widths its modules produce).
// torchvision/PyTorch is the oracle for names and widths; the native model
// is checked against the table, never the other way round.
import { strict as assert } from 'node:assert';
import { ARCHITECTURES, FEATURE_LAYERS as PUBLIC_FEATURE_LAYERS, vgg, type Architecture } from '../src';
import {
  CLASSIFIER_LINEAR_INDICES,
  FEATURE_LAYERS,
  FLATTENED_FEATURES,
  HEAD_LAYERS,
  classifierKeys,
  convKeys,
  convSlots,
  featureVectorWidth,
  featureWidth,
  featuresIndex,
  parseArch,
  stateShapes,
} from '../src/arch';
import { expectedShapes } from '../src/weights/layout';
import { torchvisionNames } from '../src/weights/torchvision-names';
import { pythonCode } from './helpers/python';

/** A non-default head, so a table that hard-coded 1000 would fail. */
const TV_CLASSES = 37;

// For every torchvision VGG: its state_dict keys and shapes (whole model and
// `features` alone), and the channels of each named layer from a forward of
// torchvision's own modules at 32x32 (the smallest input that survives five
// pools; the classifier reads it through torchvision's AdaptiveAvgPool2d).
// Weight initialisation is skipped: it costs seconds and shapes do not need it.
const TORCHVISION_ORACLE = `
import json, sys, torch, torchvision
for m in (torch.nn.Linear, torch.nn.Conv2d, torch.nn.BatchNorm2d):
    m.reset_parameters = lambda self: None
for f in ('kaiming_normal_', 'constant_', 'normal_'):
    setattr(torch.nn.init, f, lambda *a, **k: None)
shapes = lambda sd: [[k, list(v.shape)] for k, v in sd.items()]
out = {}
with torch.no_grad():
    for arch in json.loads(sys.argv[1]):
        m = getattr(torchvision.models, arch)(num_classes=int(sys.argv[2])).eval()
        widths, x = {}, torch.zeros(1, 3, 32, 32)
        for module in m.features:
            x = module(x)
            if isinstance(module, torch.nn.MaxPool2d):
                widths['stage%d' % (len(widths) + 1)] = x.shape[1]
        widths['pool5'] = torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1).shape[1]
        x = torch.flatten(m.avgpool(x), 1)
        for name, end in (('fc6', 2), ('fc7', 5), ('logits', 7)):
            widths[name] = m.classifier[:end](x).shape[1]
        out[arch] = {'state': shapes(m.state_dict()), 'features': shapes(m.features.state_dict()), 'widths': widths}
print(json.dumps(out))
`;

interface TorchvisionVgg {
  state: Array<[string, number[]]>;
  /** Keys relative to `features`. */
  features: Array<[string, number[]]>;
  widths: Record<string, number>;
}

describe('arch: one table', function () {
  let tv: Record<Architecture, TorchvisionVgg>;
  before(async () => {
    tv = JSON.parse(await pythonCode(TORCHVISION_ORACLE, [JSON.stringify(ARCHITECTURES), String(TV_CLASSES)]));
  });

  describe("the native model holds exactly the table's mmcls state", () => {
    for (const arch of ARCHITECTURES) {
      for (const numClasses of [1000, 0]) {
        it(`${arch}, numClasses ${numClasses}`, async () => {
          const model = await vgg(arch, { numClasses });
          try {
            const got = (await model.stateDict()).map(({ name, shape }) => ({ name, shape }));
            assert.deepEqual(got, expectedShapes(parseArch(arch), numClasses));
          } finally {
            model.dispose();
          }
        });
      }
    }
  });

  describe('torchvision names and shapes come from the same table', () => {
    for (const arch of ARCHITECTURES) {
      it(arch, () => {
        const spec = parseArch(arch);
        const pairs = (numClasses: number): Array<[string, number[]]> => stateShapes(spec, numClasses).map((e) => [e.torchvisionName, e.shape]);
        assert.deepEqual(pairs(TV_CLASSES), tv[arch].state);
        // numClasses 0: exactly torchvision's `features`.
        assert.deepEqual(
          pairs(0),
          tv[arch].features.map(([k, s]) => [`features.${k}`, s]),
        );
        const names = torchvisionNames(spec);
        assert.deepEqual(
          [...names.values()],
          tv[arch].state.map(([k]) => k),
        );
        assert.deepEqual(
          [...names.keys()],
          expectedShapes(spec, 1).map((e) => e.name),
        );
      });
    }
  });

  describe("featureWidth equals the width of torchvision's modules' output", () => {
    for (const arch of ARCHITECTURES) {
      it(arch, () => {
        const spec = parseArch(arch);
        for (const layer of FEATURE_LAYERS) {
          assert.equal(featureWidth(spec, layer, TV_CLASSES), tv[arch].widths[layer], layer);
        }
        assert.deepEqual(Object.keys(tv[arch].widths), [...FEATURE_LAYERS]);
      });
    }
  });

  describe('derived facts', () => {
    it("the public FEATURE_LAYERS are the table's", () => {
      assert.deepEqual([...PUBLIC_FEATURE_LAYERS], [...FEATURE_LAYERS]);
    });

    it('featureVectorWidth: a width for vector layers, none for stage maps (their size depends on the image)', () => {
      const spec = parseArch('vgg16');
      assert.deepEqual(
        FEATURE_LAYERS.map((l) => featureVectorWidth(spec, l, 10)),
        [undefined, undefined, undefined, undefined, undefined, 512, 4096, 4096, 10],
      );
    });

    it('head layers need a classifier', () => {
      for (const layer of HEAD_LAYERS) {
        assert.throws(() => featureWidth(parseArch('vgg11'), layer, 0), RangeError);
      }
      assert.equal(featureWidth(parseArch('vgg11'), 'pool5', 0), 512);
    });

    it('FORMATS.md indices: vgg16 mmcls, torchvision, torchvision with BN', () => {
      const slots = convSlots(16);
      assert.deepEqual(
        slots.map((s) => s.featureIndex),
        [0, 1, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 16],
      );
      assert.deepEqual(
        slots.map((s) => featuresIndex(s, 'torchvision', false)),
        [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28],
      );
      assert.deepEqual(
        slots.map((s) => featuresIndex(s, 'torchvision', true)),
        [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40],
      );
    });

    it('key helpers and constants agree with stateShapes', () => {
      for (const arch of ARCHITECTURES) {
        const spec = parseArch(arch);
        const keys = convSlots(spec.depth)
          .flatMap((s) => convKeys(s, spec.batchNorm))
          .concat(classifierKeys());
        assert.deepEqual(
          keys,
          stateShapes(spec, 5).map((e) => e.name),
          arch,
        );
      }
      assert.deepEqual(CLASSIFIER_LINEAR_INDICES, [0, 3, 6]);
      assert.equal(FLATTENED_FEATURES, 25088);
    });
  });
});
