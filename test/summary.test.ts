// Vgg.summary() is arithmetic over the architecture table (src/core/summary.ts).
// PyTorch is the oracle for every row: shapes from a forward of the mmcls VGG
// re-implementation, parameters and trainable parameters from its modules
// (frozenStages as mmcls freezes), multiply-adds by mmcv's counting hooks
// (test/fixtures/summary_reference.py). mmcls's published totals are checked
// in test/model.test.ts.
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { vgg } from '../src';
import { parseArch, type Architecture } from '../src/arch';
import { summarize, type SummaryOptions } from '../src/core/summary';
import { python } from './helpers/python';
import { FIXTURES } from './helpers/reference';

interface Case extends SummaryOptions {
  arch: Architecture;
  height: number;
  width: number;
}

interface Reference {
  error?: string;
  params: number;
  trainable: number;
  macs: number;
  layers: Array<{ name: string; type: string; inShape: number[]; outShape: number[]; params: number; macs: number }>;
}

// Odd sizes (ceilMode rounds differently), a feature extractor, every frozenStages
// extreme, no last pool, and 224 where no adaptive pool is needed.
const CASES: Case[] = [
  { arch: 'vgg11_bn', numClasses: 10, frozenStages: 2, ceilMode: false, withLastPool: true, height: 67, width: 45 },
  { arch: 'vgg13', numClasses: 0, frozenStages: 5, ceilMode: false, withLastPool: false, height: 64, width: 64 },
  { arch: 'vgg16_bn', numClasses: 3, frozenStages: -1, ceilMode: true, withLastPool: true, height: 99, width: 37 },
  { arch: 'vgg19', numClasses: 1000, frozenStages: 1, ceilMode: true, withLastPool: false, height: 51, width: 33 },
  { arch: 'vgg11', numClasses: 5, frozenStages: 0, ceilMode: false, withLastPool: true, height: 224, width: 224 },
  { arch: 'vgg13_bn', numClasses: 7, frozenStages: 3, ceilMode: true, withLastPool: true, height: 31, width: 31 },
];
// Inputs PyTorch refuses: a 1x1 map reaches a MaxPool2d without ceilMode.
const TOO_SMALL: Case[] = [
  { arch: 'vgg11', numClasses: 5, frozenStages: -1, ceilMode: false, withLastPool: true, height: 31, width: 31 },
  { arch: 'vgg16', numClasses: 0, frozenStages: -1, ceilMode: false, withLastPool: true, height: 7, width: 200 },
];

async function reference(cases: Case[]): Promise<Reference[]> {
  const configs = cases.map((c) => {
    const spec = parseArch(c.arch);
    return {
      depth: spec.depth,
      bn: spec.batchNorm,
      num_classes: c.numClasses,
      frozen_stages: Math.max(0, c.frozenStages),
      ceil_mode: c.ceilMode,
      with_last_pool: c.withLastPool,
      height: c.height,
      width: c.width,
    };
  });
  return JSON.parse(await python(path.join(FIXTURES, 'summary_reference.py'), [JSON.stringify(configs)])) as Reference[];
}

const label = (c: Case): string =>
  `${c.arch} numClasses ${c.numClasses}, frozenStages ${c.frozenStages}, ceilMode ${c.ceilMode}, withLastPool ${c.withLastPool}, ${c.height}x${c.width}`;

describe('summary', () => {
  let refs: Reference[];
  let tooSmall: Reference[];
  before(async function () {
    this.timeout(300000);
    [refs, tooSmall] = await Promise.all([reference(CASES), reference(TOO_SMALL)]);
  });

  CASES.forEach((c, i) => {
    it(`every row and total equals PyTorch's: ${label(c)}`, () => {
      const ref = refs[i];
      assert.equal(ref.error, undefined, ref.error);
      const s = summarize(parseArch(c.arch), c, c.height, c.width);
      assert.deepEqual(
        s.layers.map((l) => ({ ...l, type: l.type.split('(')[0] })),
        ref.layers,
      );
      assert.equal(s.params, ref.params);
      assert.equal(s.trainableParams, ref.trainable);
      assert.equal(s.macs, ref.macs);
    });
  });

  it('refuses an input a MaxPool2d would reduce to nothing, as PyTorch does', () => {
    TOO_SMALL.forEach((c, i) => {
      assert.match(tooSmall[i].error ?? '', /too small/i, `PyTorch ran ${label(c)}`);
      assert.throws(
        () => summarize(parseArch(c.arch), c, c.height, c.width),
        (e: unknown) => e instanceof RangeError && (e as { code?: string }).code === 'ERR_OUT_OF_RANGE' && /too small/.test(e.message),
      );
    });
  });

  it('a model reports the options it was built with, and its new head after resetHead', async () => {
    const c = CASES[0];
    const m = await vgg(c.arch, { numClasses: c.numClasses, frozenStages: c.frozenStages, ceilMode: c.ceilMode, withLastPool: c.withLastPool });
    try {
      const s = m.summary([c.height, c.width]);
      assert.equal(s.trainableParams, refs[0].trainable);
      assert.deepEqual(s.layers, summarize(parseArch(c.arch), c, c.height, c.width).layers);
      await m.resetHead(4);
      assert.deepEqual(m.summary().layers.at(-1)!.outShape, [1, 4]);
    } finally {
      m.dispose();
    }
  });
});
