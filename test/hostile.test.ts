// Broken and hostile files (test/fixtures/make_hostile.py): each must be
// rejected with a CheckpointError of the expected code and a message naming
// the file, quickly, without running anything.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from './helpers/python';
import { materialize, readPth, type TensorRef } from '../src/weights/pth';
import { readAll } from './helpers/read-all';
import { CheckpointError } from '../src/weights/errors';
import { assertFits, expectedShapes, interpretCheckpoint } from '../src/weights/layout';
import { TensorValue, writePth } from '../src/weights/pth/writer';
import { convKeys, convSlots, classifierKeys } from '../src/arch';

const SCRIPT = path.join(__dirname, 'fixtures', 'make_hostile.py');
const PER_FILE_MS = 5000;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} hung for ${ms} ms`)), ms);
    }),
  ]);
}

describe('hostile checkpoints', function () {
  const tmp = tempDir();
  const dir = path.join(tmp.dir, 'corpus');
  const marker = path.join(tmp.dir, 'PWNED');
  fs.mkdirSync(dir);
  // Generated synchronously at load so one `it` per file can be declared.
  require('node:child_process').execFileSync(process.env.VGG_TEST_PYTHON ?? '/usr/bin/python3', [SCRIPT, dir, marker]);
  const manifest: Record<string, string> = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  after(() => tmp.cleanup());

  it('the corpus has at least 30 files', () => assert.ok(Object.keys(manifest).length >= 30));

  for (const [name, code] of Object.entries(manifest)) {
    it(`${name} → ${code}`, async () => {
      const file = path.join(dir, name);
      const started = Date.now();
      await assert.rejects(withTimeout(readAll(file), PER_FILE_MS, name), (e: unknown) => {
        assert.ok(e instanceof CheckpointError, `expected a CheckpointError but got ${String(e)}`);
        assert.equal(e.code, code, e.message);
        assert.ok(e.message.includes(name), `message names the file: ${e.message}`);
        assert.equal(e.file, file);
        return true;
      });
      assert.ok(Date.now() - started < PER_FILE_MS);
    });
  }

  it('forbidden globals are named in the message', async () => {
    await assert.rejects(
      readPth(path.join(dir, 'zip_reduce_posix_system.pth')),
      /Refusing to load global 'posix\.system' from checkpoint .*zip_reduce_posix_system\.pth: only tensors, containers and plain values are allowed/,
    );
    await assert.rejects(readPth(path.join(dir, 'legacy_reduce_builtins_eval.pth')), /'builtins\.eval'/);
    await assert.rejects(readPth(path.join(dir, 'legacy_reduce_subprocess_popen.pth')), /'subprocess\.Popen'/);
  });

  it("nothing ran: the payloads' marker file does not exist", () => {
    assert.equal(fs.existsSync(marker), false);
  });

  it('materialize re-checks the file: a file truncated after reading is refused', async () => {
    const file = path.join(tmp.dir, 'shrinks.pth');
    await writePth(file, new Map([['w', new TensorValue('float32', [1000], new Float32Array(1000))]]));
    const ref = ((await readPth(file)).object as Map<string, TensorRef>).get('w')!;
    fs.truncateSync(file, ref.byteOffset + 100);
    await assert.rejects(
      materialize(ref),
      (e: unknown) => e instanceof CheckpointError && e.code === 'BAD_STORAGE' && /claims 4000 bytes but the file has/.test(e.message),
    );
  });

  it('shape mismatches against the model go through checkAgainst as ONE error', async () => {
    // A vgg11 key set with wrong shapes everywhere and one key missing.
    const sd = new Map<string, TensorValue>();
    for (const slot of convSlots(11)) {
      for (const k of convKeys(slot, false)) sd.set(`backbone.${k}`, new TensorValue('float32', [1, 1, 1, 1], new Float32Array(1)));
    }
    for (const k of classifierKeys()) sd.set(`backbone.${k}`, new TensorValue('float32', [10, 2], new Float32Array(20)));
    sd.delete('backbone.classifier.3.bias');
    const file = path.join(tmp.dir, 'wrong-shapes.pth');
    await writePth(file, { meta: {}, state_dict: sd });
    const ck = interpretCheckpoint<TensorRef>((await readPth(file)).object, file);
    assert.deepEqual(ck.arch, { depth: 11, batchNorm: false });
    assert.throws(
      () => assertFits(expectedShapes(ck.arch, ck.numClasses), ck.tensors, file, { strict: true }),
      (e: unknown) => {
        assert.ok(e instanceof CheckpointError && e.code === 'STATE_MISMATCH');
        assert.match(
          e.message,
          /wrong-shapes\.pth does not fit the model: missing 1: classifier\.3\.bias; shape mismatch 21: features\.0\.conv\.weight expected \[64, 3, 3, 3\] but got \[1, 1, 1, 1\]/,
        );
        return true;
      },
    );
  });
});
