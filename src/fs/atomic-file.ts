// Files the package writes (checkpoints, .npy features, reports) appear whole
// or not at all: bytes go to a temporary name in the same folder, are flushed
// to disk, and are renamed over the target (rename is atomic within a
// folder). A process killed mid-write leaves its temporary behind; the next
// write of the same file removes the temporaries of writers that are no
// longer alive, so a crash leaves no litter after the next run.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The temporary name for `file` used by this process: `<file>.tmp-<pid>-<random>`. */
export function tempNameFor(file: string): string {
  return `${file}.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes `<file>.tmp-<pid>-*` left by writers that died (their pid is gone).
 * Never throws: a temporary it cannot remove is left for the next time.
 */
export async function removeStaleTemps(file: string): Promise<void> {
  const base = path.basename(file);
  await removeStaleTempsIn(path.dirname(file), (n) => n === base);
}

/**
 * Removes, in `dir`, every `<name>.tmp-<pid>-<hex>` (file or folder) whose
 * `<name>` passes `accept` and whose writer's pid is gone. Never throws.
 */
export async function removeStaleTempsIn(dir: string, accept: (name: string) => boolean): Promise<void> {
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^(.+)\.tmp-(\d+)-[0-9a-f]+$/.exec(n);
    if (!m || !accept(m[1])) continue;
    const pid = Number(m[2]);
    if (Number.isSafeInteger(pid) && pid > 0 && !alive(pid))
      await fs.promises.rm(path.join(dir, n), { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Flushes a folder's entry list, so a rename into it survives a power cut (best effort: not every system allows it). */
export async function syncDir(dir: string): Promise<void> {
  let fh: fs.promises.FileHandle | undefined;
  try {
    fh = await fs.promises.open(dir, 'r');
    await fh.sync();
  } catch {
    // Some file systems refuse fsync on a folder; the rename is still atomic.
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/**
 * Writes `data` to `file` atomically: temporary name, fsync, rename, folder
 * fsync; the temporary is removed on failure, and stale ones from dead
 * writers are removed first.
 * @throws the system's error when the file cannot be written
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await withAtomicFile(file, (fh) => fh.writeFile(data));
}

/**
 * Runs `write` on a fresh temporary next to `file`, then flushes it and
 * renames it over `file`; on failure the temporary is removed. Temporaries
 * of writers that died are removed first.
 * @throws whatever `write` throws, or the system's error
 */
export async function withAtomicFile(file: string, write: (fh: fs.promises.FileHandle) => Promise<void>): Promise<void> {
  await removeStaleTemps(file);
  const tmp = tempNameFor(file);
  const fh = await fs.promises.open(tmp, 'wx');
  let ok = false;
  try {
    await write(fh);
    await fh.sync();
    await fh.close();
    await fs.promises.rename(tmp, file);
    ok = true;
  } finally {
    if (!ok) {
      await fh.close().catch(() => undefined);
      await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    }
  }
  await syncDir(path.dirname(file));
}
