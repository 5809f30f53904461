// What torch 2.x tools write around a VGG state_dict (issue 22 item 3): torch
// 2.13 (the official wheel, test/helpers/torch2.ts) writes each kind; the
// weights vgg-native loads must equal the ones torch saved, bit for bit
// (test/fixtures/torch2/write_wrapped.py dumps them in canonical order).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { vgg, CheckpointError } from '../src';
import { readWeights } from '../src/weights';
import { tempDir } from './helpers/python';
import { torch2Python } from './helpers/torch2';

const SCRIPT = path.resolve(__dirname, 'fixtures', 'torch2', 'write_wrapped.py');

/** Every float32 tensor of the model's state, concatenated in canonical order. */
async function loadedFloats(file: string, ema: boolean): Promise<{ bytes: Buffer; info: unknown; labels?: string[] }> {
  const model = await vgg({ weights: file, ema });
  try {
    const parts = (await model.stateDict())
      .filter((t) => t.dtype === 'float32')
      .map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    return { bytes: Buffer.concat(parts), info: model.weightsInfo, labels: model.labels };
  } finally {
    model.dispose();
  }
}

describe('checkpoints written by torch 2.x tools', function () {
  const run = torch2Python();
  const { dir, cleanup } = tempDir();
  after(cleanup);
  before(function () {
    if (!run) this.skip(); // no torch 2.x CPU wheel on this machine: nothing writes these files
  });

  /** Has torch 2.13 write `kind`; returns the checkpoint and the expected weights. */
  async function written(kind: string): Promise<{ file: string; expected: Buffer }> {
    const out = path.join(dir, kind);
    fs.mkdirSync(out, { recursive: true });
    await run!(`import runpy, sys; sys.argv = ${JSON.stringify([SCRIPT, out, kind])}; runpy.run_path(sys.argv[0], run_name='__main__')`);
    const file = path.join(out, 'ckpt.pth');
    const expected = fs.readFileSync(path.join(out, 'expected.f32'));
    return { file, expected };
  }

  const cases: Array<{ kind: string; layout: string; ema?: boolean; source?: string; labels?: boolean }> = [
    { kind: 'compiled', layout: 'torchvision' },
    { kind: 'lightning', layout: 'torchvision', labels: true },
    { kind: 'mmengine', layout: 'mmcls', labels: true },
    { kind: 'timm-train', layout: 'torchvision', source: "'state_dict_ema'" },
    { kind: 'timm-train-ema', layout: 'torchvision', ema: true, source: "'state_dict_ema'" },
    { kind: 'ema-keys', layout: 'torchvision', source: "'ema.' keys" },
    { kind: 'mmcv-ema', layout: 'mmcls', source: "mmcv's 'ema_' buffers", labels: true },
    { kind: 'mmcv-ema-use', layout: 'mmcls', ema: true, source: "mmcv's 'ema_' buffers", labels: true },
  ];
  for (const c of cases) {
    it(`${c.kind}: ${c.ema ? 'the EMA' : 'the live'} weights load bit-exactly (${c.layout} layout)`, async () => {
      const { file, expected } = await written(c.kind);
      const got = await loadedFloats(file, c.ema === true);
      assert.equal(got.bytes.length, expected.length);
      assert.ok(got.bytes.equals(expected), 'loaded weights differ from what torch saved');
      const info = got.info as { layout: string; ema?: { source: string; used: boolean } };
      assert.equal(info.layout, c.layout);
      assert.deepEqual(info.ema, c.source ? { source: c.source, used: c.ema === true } : undefined);
      if (c.labels) assert.deepEqual((await readWeights(file)).labels, ['class0', 'class1', 'class2']);
    });
  }

  it('asking for EMA weights of a checkpoint without any is refused with UNKNOWN_LAYOUT', async () => {
    const { file } = await written('compiled');
    await assert.rejects(
      vgg({ weights: file, ema: true }),
      (e: unknown) => e instanceof CheckpointError && e.code === 'UNKNOWN_LAYOUT' && /EMA weights were asked for/.test(e.message),
    );
  });
});
