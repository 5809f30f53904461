// The built command line the CLI tests run: dist/cli.js (or VGG_NATIVE_CLI, a build
// elsewhere), rebuilt with tsc when a source is newer than it.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');

/** The CLI entry point the tests spawn with `node`. */
export const CLI = process.env.VGG_NATIVE_CLI ?? path.join(ROOT, 'dist', 'cli.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.name.endsWith('.ts') || e.name.endsWith('.json')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Rebuilds dist/ with tsc when any source is newer than dist/cli.js (not for a VGG_NATIVE_CLI build). */
export async function buildIfStale(): Promise<void> {
  if (process.env.VGG_NATIVE_CLI) return;
  const built = fs.existsSync(CLI) ? fs.statSync(CLI).mtimeMs : 0;
  if (built >= newestMtime(path.join(ROOT, 'src'))) return;
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  // tsc emits even with type errors elsewhere in the tree; what matters here is a fresh dist/cli.js.
  await execFileP(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.json')], { cwd: ROOT }).catch(() => undefined);
  await execFileP(process.execPath, [path.join(ROOT, 'scripts', 'write-esm-entry.js')], { cwd: ROOT });
  assert.ok(fs.statSync(CLI).mtimeMs > built, 'tsc did not produce dist/cli.js');
}
