// A lock file per cache file, so two processes fetching the same weights
// leave one good copy: the first creates `<file>.lock` exclusively (O_EXCL)
// and downloads; the others wait, then find the finished file. The holder
// touches the lock while it works; a lock whose holder died (its pid is gone
// on this host, or no touch for `staleMs`) is broken, so a killed download
// never blocks the cache forever.
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { abortErrorOf } from '../abort';
import { DownloadError } from './errors';

export interface LockOptions {
  /** A lock not touched for this long is a dead holder's, ms. Default 30 s. */
  staleMs?: number;
  /** Give up (LOCKED) after waiting this long for a live holder, ms. Default 1 hour. */
  waitMs?: number;
  /** How often a waiter looks again, ms. Default 200. */
  pollMs?: number;
  signal?: AbortSignal;
}

/** A held lock. */
export interface FileLock {
  /** Removes the lock if it is still ours. Never throws. */
  release(): Promise<void>;
}

/** What a lock file says about its holder. */
interface Holder {
  pid: number;
  host: string;
  token: string;
  since: number;
}

const DEFAULT_STALE_MS = 30_000;
const DEFAULT_WAIT_MS = 60 * 60_000;
const DEFAULT_POLL_MS = 200;

/** Whether a process with this pid exists here (EPERM: it does, as another user). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readHolder(file: string): Promise<{ holder?: Holder; mtimeMs: number } | undefined> {
  try {
    const [text, st] = await Promise.all([fs.promises.readFile(file, 'utf8'), fs.promises.stat(file)]);
    let holder: Holder | undefined;
    try {
      holder = JSON.parse(text) as Holder;
    } catch {
      holder = undefined; // created but not written yet
    }
    return { holder, mtimeMs: st.mtimeMs };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function isStale(found: { holder?: Holder; mtimeMs: number }, staleMs: number): boolean {
  if (Date.now() - found.mtimeMs > staleMs) return true;
  const h = found.holder;
  return h !== undefined && h.host === os.hostname() && !isAlive(h.pid);
}

/** Moves a dead holder's lock aside (rename is atomic: one breaker wins), unless it changed hands meanwhile. */
async function breakLock(file: string, judged: Holder | undefined): Promise<void> {
  const now = await readHolder(file);
  if (!now || now.holder?.token !== judged?.token) return;
  const aside = `${file}.stale-${process.pid}-${randomUUID().slice(0, 8)}`;
  try {
    await fs.promises.rename(file, aside);
    await fs.promises.rm(aside, { force: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** Creates the lock file if nobody holds it; false when somebody does. */
async function tryCreate(file: string, holder: Holder): Promise<boolean> {
  try {
    await fs.promises.writeFile(file, JSON.stringify(holder), { flag: 'wx' });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new DownloadError('CACHE', `cannot create the lock ${file}: ${(e as Error).message}`, { file, cause: e });
  }
}

function held(file: string, holder: Holder, staleMs: number): FileLock {
  // Touching the lock tells waiters the holder is alive; unref'd, so it never keeps the process up.
  const heartbeat = setInterval(
    () => {
      const now = new Date();
      fs.promises.utimes(file, now, now).catch(() => undefined);
    },
    Math.max(10, Math.floor(staleMs / 3)),
  );
  heartbeat.unref();
  return {
    async release() {
      clearInterval(heartbeat);
      const now = await readHolder(file).catch(() => undefined);
      if (now?.holder?.token === holder.token) await fs.promises.rm(file, { force: true }).catch(() => undefined);
    },
  };
}

function lockedError(file: string, found: { holder?: Holder; mtimeMs: number } | undefined, waitedMs: number): DownloadError {
  const who = found?.holder ? `process ${found.holder.pid} on ${found.holder.host}` : 'another process';
  return new DownloadError(
    'LOCKED',
    `${who} holds ${file} (waited ${Math.round(waitedMs / 1000)} s for it to finish). ` +
      `If no other vgg-native process is downloading, delete ${file}`,
    { file },
  );
}

/**
 * Takes the lock `file`, waiting while a live holder has it.
 * @param file - the lock file's path (its folder must exist)
 * @returns the held lock; call release() when done
 * @throws DownloadError LOCKED after `waitMs`, CACHE when the lock cannot be created; AbortError when `signal` fires
 */
export async function acquireLock(file: string, options: LockOptions = {}): Promise<FileLock> {
  const staleMs = options.staleMs ?? DEFAULT_STALE_MS;
  const waitMs = options.waitMs ?? DEFAULT_WAIT_MS;
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  const holder: Holder = { pid: process.pid, host: os.hostname(), token: randomUUID(), since: Date.now() };
  const started = Date.now();
  for (;;) {
    if (options.signal?.aborted) throw abortErrorOf(options.signal);
    if (await tryCreate(file, holder)) return held(file, holder, staleMs);
    const found = await readHolder(file);
    if (found && isStale(found, staleMs)) {
      await breakLock(file, found.holder);
      continue;
    }
    if (Date.now() - started > waitMs) throw lockedError(file, found, Date.now() - started);
    try {
      await sleep(pollMs, undefined, options.signal ? { signal: options.signal } : {});
    } catch (e) {
      if (options.signal?.aborted) throw abortErrorOf(options.signal);
      throw e;
    }
  }
}
