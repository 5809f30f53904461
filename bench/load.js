#!/usr/bin/env node
// Benchmark: loading a full-size VGG-16 checkpoint (mmcls layout, zip and
// legacy) with vgg-native (build the model + load) vs PyTorch (build the
// model + torch.load + load_state_dict; the load alone also shown), in the
// same run on the same files. Needs Debian's python3-torch (/usr/bin/python3).
//   node bench/load.js [--keep DIR]
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const PY = process.env.VGG_TEST_PYTHON || '/usr/bin/python3';
const ROOT = path.resolve(__dirname, '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgg-bench-load-'));
const torchLoad = `
import sys, time, resource, torch
sys.path.insert(0, sys.argv[2])
from mmcls_vgg import MmclsVGG
torch.set_num_threads(${os.cpus().length})
t0 = time.perf_counter()
m = MmclsVGG(16, False, 1000)
t = time.perf_counter()
ck = torch.load(sys.argv[1], map_location='cpu')
m.load_state_dict({k[9:]: v for k, v in ck['state_dict'].items()})
t1 = time.perf_counter()
print(t1 - t0, t1 - t)
`;
try {
  execFileSync(PY, [path.join(ROOT, 'test', 'fixtures', 'make_parity_checkpoints.py'), dir, 'vgg16'], { stdio: 'inherit' });
  const rows = [];
  for (const file of ['zip.pth', 'legacy.pth']) {
    const f = path.join(dir, file);
    // Page cache warm for both readers.
    fs.readFileSync(f).length;
    const ours = [];
    const theirs = [];
    for (let i = 0; i < 3; i++) {
      ours.push(JSON.parse(execFileSync(process.execPath, [path.join(__dirname, 'load-peak.js'), f], { encoding: 'utf8' })));
      theirs.push(execFileSync(PY, ['-c', torchLoad, f, path.join(ROOT, 'test', 'fixtures')], { encoding: 'utf8' }).trim().split(' ').map(Number));
    }
    const best = (xs) => Math.min(...xs);
    const o = best(ours.map((r) => r.seconds));
    const t = best(theirs.map((x) => x[0]));
    const tLoad = best(theirs.map((x) => x[1]));
    rows.push({
      file, MB: (ours[0].fileSize / 1e6).toFixed(0), 'vgg({weights}) s': o.toFixed(3),
      'PyTorch build+load s': t.toFixed(3), 'ratio': (t / o).toFixed(2), '(torch.load+load_state_dict alone s)': tLoad.toFixed(3),
      'peak RSS / file': (Math.max(...ours.map((r) => r.above)) / ours[0].fileSize).toFixed(2),
    });
  }
  console.table(rows);
} finally {
  if (!process.argv.includes('--keep')) fs.rmSync(dir, { recursive: true, force: true });
}
