// int8 against fp32 on this machine, in one run: VGG-16 (mmcls initialisation,
// 1000 classes) calibrated on a few photos, then forward passes (logits from
// a normalised float32 batch: trunk and classifier) at batch 8 and batch 1:
// ours in fp32 and int8, and onnxruntime-node running our own exports of the
// same model, fp32 and the QDQ int8 form (model.save(x.onnx, { quantized: true })),
// the four interleaved rep by rep so a change in load hits all alike.
//
//   node --import tsx bench/int8.ts [--reps N]
//
// Figures are images per second (median of the reps); the ratio is what to quote.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { vgg } from '../src';
import { randomInput } from '../test/helpers/reference';

type Row = 'fp32' | 'int8' | 'ort fp32' | 'ort int8';
const ROWS: readonly Row[] = ['fp32', 'int8', 'ort fp32', 'ort int8'];

const SKI = '/usr/lib/python3/dist-packages/skimage/data';
const SKL = '/usr/lib/python3/dist-packages/sklearn/datasets/images';
const PHOTOS = ['chelsea.png', 'coffee.png', 'astronaut.png', 'motorcycle_left.png', 'camera.png', 'coins.png']
  .map((f) => `${SKI}/${f}`)
  .concat([`${SKL}/china.jpg`, `${SKL}/flower.jpg`]);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main(): Promise<void> {
  const repsAt = process.argv.indexOf('--reps');
  const reps = repsAt > 0 ? Number(process.argv[repsAt + 1]) : 5;
  const model = await vgg('vgg16', { seed: 0 });
  const q = await model.quantize({ calibration: PHOTOS, batchSize: 4 });
  console.log(`calibrated on ${q.samples} photos in ${q.seconds.toFixed(1)} s (${q.method})`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgg-native-int8-bench-'));
  const sessions: Record<string, ort.InferenceSession> = {};
  for (const [name, quantized] of [['ort fp32', false], ['ort int8', true]] as const) {
    const file = path.join(dir, `${name.replace(' ', '-')}.onnx`);
    await model.save(file, { quantized });
    const threads = Math.max(1, os.availableParallelism());
    sessions[name] = await ort.InferenceSession.create(file, { graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1 });
    fs.rmSync(file);
  }
  const run = async (row: Row, x: { data: Float32Array; shape: number[] }): Promise<void> => {
    if (row === 'fp32' || row === 'int8') await model.forward(x, { precision: row });
    else await sessions[row].run({ input: new ort.Tensor('float32', x.data, x.shape) });
  };
  const rows: string[] = [];
  for (const batch of [8, 1]) {
    const x = randomInput([batch, 3, 224, 224], 7);
    const seconds = Object.fromEntries(ROWS.map((r) => [r, [] as number[]])) as Record<Row, number[]>;
    for (const r of ROWS) await run(r, x); // plans, packed weights, caches
    for (let rep = 0; rep < reps; rep++) {
      for (const r of ROWS) {
        const t0 = performance.now();
        await run(r, x);
        seconds[r].push((performance.now() - t0) / 1000);
      }
    }
    const ips = Object.fromEntries(ROWS.map((r) => [r, batch / median(seconds[r])])) as Record<Row, number>;
    rows.push(
      `vgg16 batch ${batch}: ` +
        ROWS.map((r) => `${r} ${ips[r].toFixed(2)}`).join(', ') +
        ` img/s; int8/fp32 ${(ips.int8 / ips.fp32).toFixed(2)}x, int8/ort int8 ${(ips.int8 / ips['ort int8']).toFixed(2)}x, ort int8/ort fp32 ${(ips['ort int8'] / ips['ort fp32']).toFixed(2)}x`,
    );
  }
  for (const r of rows) console.log(r);
  fs.rmSync(dir, { recursive: true, force: true });
  model.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
