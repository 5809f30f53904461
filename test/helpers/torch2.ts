// The official torch 2.x CPU wheel as a second Python oracle, beside Debian's
// torch 1.13: what torch 2.x writes (torch.save archives with its newer
// rebuild functions, torch.jit.save, torch.compile's keys) can only be made
// by torch 2.x. The wheel on disk is unpacked once into the temp folder
// (about 700 MB, 5 s) and run with Debian's Python 3.11 plus a small
// typing_extensions shim (test/fixtures/torch2/).
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PYTHON } from './python';

const run = promisify(execFile);
const SHIM = path.resolve(__dirname, '..', 'fixtures', 'torch2');
const WHEEL_DIRS = ['/opt/wheels', '/opt/pypi-more/files'];

/** The torch 2.x CPU wheel on disk (VGG_TEST_TORCH2_WHEEL overrides), or undefined. */
export function torch2Wheel(): string | undefined {
  const given = process.env.VGG_TEST_TORCH2_WHEEL;
  if (given) return fs.existsSync(given) ? given : undefined;
  for (const dir of WHEEL_DIRS) {
    if (!fs.existsSync(dir)) continue;
    const hit = fs
      .readdirSync(dir)
      .filter((f) => /^torch-2\.\d+\.\d+\+cpu-cp311-.*\.whl$/.test(f))
      .sort()
      .pop();
    if (hit) return path.join(dir, hit);
  }
  return undefined;
}

/** Unpacks the wheel once (atomically: a rename) and returns the folder to put on PYTHONPATH. */
function unpacked(wheel: string): string {
  const dest = path.join(os.tmpdir(), 'vgg-native-oracles', path.basename(wheel, '.whl'));
  if (fs.existsSync(path.join(dest, 'torch', '__init__.py'))) return dest;
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = fs.mkdtempSync(`${dest}.part-`);
  execFileSync('unzip', ['-q', wheel, 'torch/*', 'torchgen/*', '-d', tmp], { stdio: 'ignore' });
  try {
    fs.renameSync(tmp, dest);
  } catch {
    fs.rmSync(tmp, { recursive: true, force: true }); // another process won the race
  }
  return dest;
}

/** A runner for Python code under torch 2.x, or undefined when no wheel is on disk (the caller skips, saying so). */
export function torch2Python(): ((code: string, args?: string[]) => Promise<string>) | undefined {
  const wheel = torch2Wheel();
  if (!wheel) return undefined;
  const root = unpacked(wheel);
  return async (code, args = []) => {
    const { stdout } = await run(PYTHON, ['-c', code, ...args], {
      maxBuffer: 256 * 1024 * 1024,
      env: { ...process.env, PYTHONPATH: `${SHIM}:${root}`, OMP_NUM_THREADS: String(os.cpus().length) },
    });
    return stdout;
  };
}
