// Where `vgg-native demo` may write. Its outputs (a dataset, a 500 MB .pth,
// reports) never go into the package's own folder, where they would end up in
// a published tarball or a clone's working tree; by default they go to a new
// folder under the system's temp folder. A folder a previous demo wrote (it
// holds the marker file) may be written again: the demo's own files in it
// are removed first, nothing else.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../fs/package';

/** The file the demo leaves in its folder, so a later run knows it may reuse the folder. */
export const DEMO_MARKER = '.vgg-native-demo';

/** What the demo writes in its folder (and removes before writing again). */
export const DEMO_OUTPUTS = ['data', 'gradcam', 'report.html', 'report-full.html', 'model.pth'] as const;

/** `p` with symbolic links resolved as far as it exists (a path that does not exist yet keeps its missing tail). */
function realPathSoFar(p: string): string {
  const abs = path.resolve(p);
  let head = abs;
  const tail: string[] = [];
  while (!fs.existsSync(head)) {
    const up = path.dirname(head);
    if (up === head) break;
    tail.unshift(path.basename(head));
    head = up;
  }
  return path.join(fs.realpathSync(head), ...tail);
}

/**
 * Whether `dir` is `parent` or lies below it, once symbolic links are resolved.
 *
 * @param dir - any path, existing or not
 * @param parent - an existing folder
 * @returns true when `dir` is inside `parent`
 */
export function isInside(dir: string, parent: string): boolean {
  const rel = path.relative(realPathSoFar(parent), realPathSoFar(dir));
  return rel === '' || (!rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel));
}

/**
 * Why the demo may not write into `dir`, or undefined when it may: a folder inside the
 * package, something that is not a folder, or a non-empty folder no demo wrote.
 *
 * @param dir - the folder asked for (created later when missing)
 * @param root - the package's root; default {@link packageRoot}
 * @returns a one-line reason, or undefined
 */
export function demoFolderProblem(dir: string, root: string = packageRoot()): string | undefined {
  if (isInside(dir, root)) return `${dir} is inside the vgg-native package (${root}): give a folder outside it`;
  if (!fs.existsSync(dir)) return undefined;
  if (!fs.statSync(dir).isDirectory()) return `${dir} exists and is not a folder`;
  const entries = fs.readdirSync(dir);
  if (entries.length > 0 && !entries.includes(DEMO_MARKER)) {
    return `${dir} is not empty and no demo wrote it: give a new or empty folder`;
  }
  return undefined;
}

/**
 * Makes `dir` ready for a run: creates it, removes a previous demo's outputs
 * ({@link DEMO_OUTPUTS}, nothing else) and writes the {@link DEMO_MARKER}.
 * Call after {@link demoFolderProblem} found nothing.
 *
 * @param dir - the demo's folder
 */
export function prepareDemoFolder(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const name of DEMO_OUTPUTS) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
  fs.writeFileSync(path.join(dir, DEMO_MARKER), 'written by `vgg-native demo`; a later demo may replace its outputs here\n');
}

/**
 * A new, empty folder under the system's temp folder, named after the time:
 * `vgg-native-demo-YYYYMMDD-HHMMSS-XXXXXX` (XXXXXX random, so two runs never share one).
 *
 * @param now - the time in the name. Default: now.
 * @returns its path
 */
export function newDemoFolder(now = new Date()): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${two(now.getMonth() + 1)}${two(now.getDate())}-${two(now.getHours())}${two(now.getMinutes())}${two(now.getSeconds())}`;
  return fs.mkdtempSync(path.join(os.tmpdir(), `vgg-native-demo-${stamp}-`));
}
