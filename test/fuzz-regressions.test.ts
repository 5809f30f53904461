// Replays the fuzzer's corpus (test/fuzz/corpus): every input that ever
// failed the oracle (regressions/, kept by scripts/fuzz.js) and the seeds,
// through the same targets as the fuzzer. Each must be read or refused with
// one of the package's codes. The 2 s hang limit is the fuzzer's; here a
// generous mocha timeout catches a real hang without timing anything.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { allocBound, CORPUS_DIR, corpusFiles, runTarget, TARGETS } from './fuzz/targets';

/** Inputs that once failed (the fuzzer's, and hand-made ones found with the security suite). */
const FOUND = corpusFiles(path.join(CORPUS_DIR, 'regressions'));
const SEEDS = corpusFiles(path.join(CORPUS_DIR, 'seeds'));

describe('fuzz corpus replay', function () {
  this.timeout(60000);

  it('the corpus holds seeds of every target', () => {
    assert.deepEqual([...new Set(SEEDS.map(([t]) => t))].sort(), [...TARGETS].sort());
  });

  for (const [kind, files] of [
    ['regression', FOUND],
    ['seed', SEEDS],
  ] as const) {
    for (const [target, file] of files) {
      it(`${kind} ${target}/${path.basename(file)}: read or refused with a code`, async () => {
        const bytes = fs.readFileSync(file);
        const before = process.resourceUsage().maxRSS * 1024;
        const outcome = await runTarget(target, bytes);
        assert.ok(outcome.result === 'ok' || typeof outcome.code === 'string');
        const grew = process.resourceUsage().maxRSS * 1024 - before;
        assert.ok(grew <= allocBound(target, bytes.length), `peak RSS grew ${grew} bytes for ${bytes.length} input bytes`);
      });
    }
  }
});
