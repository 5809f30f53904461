// Saves that survive a kill (issue 13): each kind of file the package writes
// — .pth (model.save, saveCheckpoint, training checkpoints' weights), .npy
// features, and text/JSON such as a checkpoint folder's `latest` — is written
// by a child process that is SIGKILLed while a write is in progress. The
// file must then hold a whole version (the previous one, or a complete new
// one: never part of one), checked by numpy/torch as independent readers;
// and the next write must leave no temporary behind.
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from './helpers/python';

const CHILD = path.join(__dirname, 'helpers', 'atomic-writer-child.ts');
const PY = process.env.VGG_TEST_PYTHON ?? '/usr/bin/python3';
/** Big enough that a write takes a while; small enough for a loaded CI machine. */
const MIB = 48;
const KILLS = 3;

function writeOnce(kind: string, file: string, version: number): void {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD, kind, file, String(version), String(MIB)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

/** Starts a writer looping on `file`; kills it once a temporary of `file` exists (a write under way). */
async function killMidWrite(kind: string, file: string, version: number): Promise<void> {
  const c = spawn(process.execPath, ['--import', 'tsx', CHILD, kind, file, String(version), String(MIB), 'loop'], { stdio: 'ignore' });
  const exited = new Promise((r) => c.on('exit', r));
  const dir = path.dirname(file);
  const base = `${path.basename(file)}.tmp-`;
  for (;;) {
    if (fs.readdirSync(dir).some((n) => n.startsWith(base) && fs.statSync(path.join(dir, n), { throwIfNoEntry: false })?.size)) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  c.kill('SIGKILL');
  await exited;
}

/** The version the file holds, read by numpy/torch (independent readers); throws when it is not whole. */
function versionOf(kind: string, file: string): number {
  const py = {
    pth: 'import sys, torch; t = torch.load(sys.argv[1])["w"]; assert t.numel() == int(sys.argv[2]) and bool((t == t[0]).all()); print(float(t[0]))',
    npy: 'import sys, numpy as np; a = np.load(sys.argv[1]); assert a.size == int(sys.argv[2]) and (a == a[0]).all(); print(float(a[0]))',
    text: 'import sys, numpy as np; a = np.fromfile(sys.argv[1], "<f4"); assert a.size == int(sys.argv[2]) and (a == a[0]).all(); print(float(a[0]))',
  }[kind] as string;
  return Number(execFileSync(PY, ['-c', py, file, String((MIB * 1024 * 1024) / 4)], { encoding: 'utf8' }).trim());
}

describe('atomic writes survive a kill', function () {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  for (const kind of ['pth', 'npy', 'text']) {
    it(`${kind}: killed mid-write ${KILLS} times, the file stays whole; the next write leaves no temporaries`, async () => {
      const dir = path.join(tmp.dir, kind);
      fs.mkdirSync(dir);
      const file = path.join(dir, `out.${kind}`);
      writeOnce(kind, file, 1);
      assert.equal(versionOf(kind, file), 1);
      let strays = 0;
      for (let k = 0; k < KILLS; k++) {
        const before = versionOf(kind, file);
        await killMidWrite(kind, file, 2 + k);
        // The previous version, or a complete new one written before the kill landed.
        const after = versionOf(kind, file);
        assert.ok(after === before || after === 2 + k, `version ${after} after holding ${before}`);
        strays += fs.readdirSync(dir).filter((n) => n.includes('.tmp-')).length;
      }
      assert.ok(strays > 0, 'the kills landed mid-write (a temporary was left each time)');
      writeOnce(kind, file, 9);
      assert.equal(versionOf(kind, file), 9);
      assert.deepEqual(fs.readdirSync(dir), [path.basename(file)]);
    });
  }
});
