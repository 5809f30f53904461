// The fuzz loop, run in a child process by scripts/fuzz.js (which watches it
// for crashes and hangs: a hung or crashed child cannot report itself).
//
// Seeded mutation with outcome feedback: start from the committed seeds and
// every past regression, mutate (bit flips, interesting integers, chunk
// insert/delete/duplicate, splices between inputs of a target), run the
// target, and keep an input in the live corpus when it produced an outcome
// not seen before (a new error code, a new message shape, or success). The
// seed (FUZZ_SEED) makes a run reproducible.
//
// Before each input the child writes it to <work>/current.bin and its target
// and serial number to <work>/state, so the parent can save it if the child
// dies or stalls. An input that throws without a code, or raises peak RSS by
// more than allocBound (targets.ts), is reported on
// stdout as a JSON line {finding, target, file} and written to <work>/finding-*.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withDeclaredSize } from '../helpers/images';
import { allocBound, CORPUS_DIR, corpusFiles, Finding, runTarget, TARGETS, type TargetName } from './targets';

const work = process.env.FUZZ_WORK ?? '';
const deadline = Date.now() + Number(process.env.FUZZ_SECONDS ?? '10') * 1000;
const only = (process.env.FUZZ_TARGETS ?? '').split(',').filter(Boolean) as TargetName[];
const targets = only.length ? only : [...TARGETS];
const replay = process.env.FUZZ_REPLAY; // "<target>:<file>": run one input and exit

/** xorshift128+: reproducible from FUZZ_SEED. */
let s0 = BigInt(Number(process.env.FUZZ_SEED ?? '1') | 0) ^ 0x9e3779b97f4a7c15n;
let s1 = 0xbf58476d1ce4e5b9n;
function rnd(n: number): number {
  let x = s0;
  const y = s1;
  s0 = y;
  x ^= (x << 23n) & 0xffffffffffffffffn;
  s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
  return Number((s1 + y) & 0xffffffffn) % Math.max(1, n);
}

const INTERESTING32 = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000, 0x3fffffff];
const INTERESTING8 = [0, 1, 0x7f, 0x80, 0xff, 0x2e, 0x2f, 0x63, 0x28, 0x2e];
const MAX_LEN = 1 << 20;

function mutate(input: Buffer, others: Buffer[]): Buffer {
  let b = Buffer.from(input);
  const rounds = 1 + rnd(4);
  for (let r = 0; r < rounds; r++) {
    const at = rnd(b.length + 1);
    switch (rnd(9)) {
      case 0:
        if (b.length) b[at % b.length] ^= 1 << rnd(8);
        break;
      case 1:
        if (b.length) b[at % b.length] = INTERESTING8[rnd(INTERESTING8.length)];
        break;
      case 2:
        if (b.length >= 4) b.writeUInt32LE(INTERESTING32[rnd(INTERESTING32.length)], Math.min(at, b.length - 4));
        break;
      case 3:
        if (b.length >= 8) b.writeBigUInt64LE(BigInt(b.length + rnd(1 << 30)), Math.min(at, b.length - 8));
        break;
      case 4: // delete a chunk
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rnd(64))]);
        break;
      case 5: {
        // duplicate a chunk
        const len = 1 + rnd(64);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]);
        break;
      }
      case 6: // insert random bytes
        b = Buffer.concat([b.subarray(0, at), crypto.randomBytes(1 + rnd(16)).map(() => rnd(256)), b.subarray(at)]);
        break;
      case 7: {
        // splice with another input of the target
        const o = others[rnd(others.length)];
        const from = rnd(o.length + 1);
        b = Buffer.concat([b.subarray(0, at), o.subarray(from, from + rnd(256))]);
        break;
      }
      case 8: // truncate
        b = b.subarray(0, at);
        break;
    }
  }
  return b.length > MAX_LEN ? b.subarray(0, MAX_LEN) : b;
}

/** Sides an attacker declares: degenerate, around format limits, past the pixel budget. */
const SIDES = [1, 2, 3, 7, 255, 256, 257, 4096, 5793, 5794, 16383, 16384, 60000, 65500, 65535, 100000, 1 << 20, 1 << 24];

/**
 * Images: a new declared width and height in a valid header (PNG IHDR with
 * its CRC, JPEG SOF, GIF screen and frame, WebP VP8X/VP8L/VP8), the class of
 * input that once made a 438-byte PNG ask for gigabytes; then, half the time,
 * the generic mutations on top.
 */
function mutateImage(input: Buffer, others: Buffer[]): Buffer {
  const resized = withDeclaredSize(input, SIDES[rnd(SIDES.length)], SIDES[rnd(SIDES.length)]);
  return rnd(2) ? resized : mutate(resized, others);
}

function shape(code: string | undefined, message: string | undefined): string {
  return `${code}:${(message ?? '')
    .replace(/\/tmp\/\S+|<buffer>\S*/g, 'F')
    .replace(/\d+/g, 'N')
    .slice(0, 60)}`;
}

function report(kind: string, target: TargetName, input: Buffer, detail: string): void {
  const name = `finding-${kind}-${target}-${crypto.createHash('sha1').update(input).digest('hex').slice(0, 12)}.bin`;
  fs.writeFileSync(path.join(work, name), input);
  process.stdout.write(`${JSON.stringify({ finding: kind, target, file: name, detail: detail.slice(0, 2000) })}\n`);
}

const maxRssBytes = () => process.resourceUsage().maxRSS * 1024;

async function runOne(target: TargetName, input: Buffer, n: number): Promise<string | undefined> {
  if (work) {
    fs.writeFileSync(path.join(work, 'current.bin'), input);
    fs.writeFileSync(path.join(work, 'state'), `${n} ${target} ${Date.now()}`);
  }
  const before = maxRssBytes();
  let outcome: string | undefined;
  try {
    const o = await runTarget(target, input);
    outcome = o.result === 'ok' ? 'ok' : shape(o.code, o.message);
  } catch (e) {
    if (!(e instanceof Finding)) throw e;
    report('uncoded', target, input, e.message);
    return undefined;
  }
  const grew = maxRssBytes() - before;
  if (grew > allocBound(target, input.length)) report('alloc', target, input, `peak RSS grew ${grew} bytes for a ${input.length}-byte input`);
  return outcome;
}

async function main(): Promise<void> {
  if (replay) {
    const i = replay.indexOf(':');
    const started = Date.now();
    await runOne(replay.slice(0, i) as TargetName, fs.readFileSync(replay.slice(i + 1)), 0);
    process.stdout.write(`${JSON.stringify({ replayMs: Date.now() - started })}\n`);
    return;
  }
  const pools = new Map<TargetName, Buffer[]>();
  for (const t of targets) pools.set(t, []);
  for (const dir of ['seeds', 'regressions']) {
    for (const [t, f] of corpusFiles(path.join(CORPUS_DIR, dir))) pools.get(t)?.push(fs.readFileSync(f));
  }
  const seen = new Set<string>();
  const counts: Record<string, number> = {};
  const kept: Record<string, number> = {};
  let n = 0;
  // Warm-up: every pooled input once (sharp/libvips and protobuf initialise here).
  for (const t of targets) for (const b of pools.get(t) ?? []) seen.add(`${t}|${await runOne(t, b, n++)}`);
  while (Date.now() < deadline) {
    const t = targets[n % targets.length];
    const pool = pools.get(t) ?? [];
    if (!pool.length) {
      n++;
      continue;
    }
    const input = t === 'image' && rnd(2) ? mutateImage(pool[rnd(pool.length)], pool) : mutate(pool[rnd(pool.length)], pool);
    const o = await runOne(t, input, n++);
    counts[t] = (counts[t] ?? 0) + 1;
    const key = `${t}|${o}`;
    if (o !== undefined && !seen.has(key) && pool.length < 2000) {
      seen.add(key);
      pool.push(input);
      kept[t] = (kept[t] ?? 0) + 1;
    }
  }
  const sizes = Object.fromEntries([...pools].map(([t, p]) => [t, p.length]));
  process.stdout.write(`${JSON.stringify({ summary: true, iterations: counts, corpus: sizes, kept, outcomes: seen.size })}\n`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`fuzz worker failed: ${(e as Error).stack ?? e}\n`);
    process.exit(3);
  },
);
