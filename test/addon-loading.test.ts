// Which addon loads, and what a user reads when none does (src/binding.ts):
// VGG_NATIVE_ADDON first and alone when it names a file that is not there,
// a file that fails to load reported with dlopen's reason, the platform
// package named, and the commands that fix it. Each case in a child process
// (a process loads one addon for its lifetime).
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from './helpers/python';

const ROOT = path.resolve(__dirname, '..');

function loadWith(addon: string): { status: number | null; out: string } {
  const code = `
    const { runtime } = require(${JSON.stringify(path.join(ROOT, 'src'))});
    try { console.log(JSON.stringify(runtime().addon)); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  const r = spawnSync(process.execPath, ['-r', 'tsx/cjs', '-e', code], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, VGG_NATIVE_ADDON: addon },
  });
  return { status: r.status, out: r.stdout.trim().split('\n').pop() ?? '' };
}

describe('addon loading', function () {
  this.timeout(60000);
  const tmp = tempDir('vgg-addon-loading-');
  after(() => tmp.cleanup());

  it('VGG_NATIVE_ADDON naming a missing file: NATIVE, naming the platform, what was tried and the fix; nothing else is loaded', () => {
    const missing = path.join(tmp.dir, 'nope.node');
    const r = JSON.parse(loadWith(missing).out);
    assert.equal(r.code, 'NATIVE');
    assert.match(r.message, new RegExp(`no native addon loads on ${process.platform}-${process.arch}`));
    assert.ok(r.message.includes(`VGG_NATIVE_ADDON: ${missing} does not exist`), r.message);
    assert.match(r.message, /npx vgg-native build/);
    assert.match(r.message, /@vgg-native\/linux-x64-gnu/);
    assert.doesNotMatch(r.message, /source build \(cmake-js\)/, 'an explicit VGG_NATIVE_ADDON must not fall through to another addon');
  });

  it('a file that is not a shared library: its dlopen error is quoted', () => {
    const bogus = path.join(tmp.dir, 'bogus.node');
    fs.writeFileSync(bogus, 'not an ELF file');
    const r = JSON.parse(loadWith(bogus).out);
    assert.equal(r.code, 'NATIVE');
    assert.ok(r.message.includes(`${bogus} failed to load (`), r.message);
    assert.match(r.message, /invalid ELF header|file too short/);
  });

  it('the addon in use is reported by runtime().addon', () => {
    const own = process.env.VGG_NATIVE_ADDON;
    const file = own ?? path.join(ROOT, 'build', 'Release', 'vgg_native.node');
    const r = JSON.parse(loadWith(file).out);
    assert.deepEqual(r, { kind: 'env', path: file });
  });
});
