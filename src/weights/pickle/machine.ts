// The unpickler's state (input cursor, stack, mark stack, memo) and the small
// primitives every opcode handler uses: bounded reads of the input, stack
// moves, memo access, argument checks and the error helpers. Each primitive
// checks its bound, so a handler cannot read past the input or pop an empty
// stack; the hot ones are tiny methods V8 inlines into the handlers.
import { CheckpointError, inFile } from '../errors';
import { opName } from './opcodes';
import { describe, type UnpickleOptions } from './values';

/**
 * The input ended inside the pickle. `needed` is the offset the pickle wanted
 * to read up to, so a caller holding only part of a file can read more.
 */
export class PickleTruncatedError extends CheckpointError {
  /** The reason without the file name, for callers that wrap it. */
  readonly detail: string;
  constructor(
    readonly needed: number,
    available: number,
    what: string,
    file?: string,
  ) {
    const detail = `the pickle ${what} needs ${needed} bytes of input but only ${available} are there`;
    super('TRUNCATED', `Checkpoint${file ? ` ${file}` : ''} is truncated: ${detail}`, file);
    this.name = 'CheckpointError';
    this.detail = detail;
  }
}

/** Executes one opcode; returns true at STOP, when `result` holds the value. */
export type Handler = (m: Machine) => boolean | void;

/** Our implementation of an allow-listed callable: what REDUCE runs on its argument tuple. */
export type Call = (m: Machine, args: unknown[], path: string) => unknown;

/** Codes a handler may fail with (FORBIDDEN_GLOBAL is raised where globals are resolved). */
export type MachineFailure = 'BAD_PICKLE' | 'LIMIT' | 'FORBIDDEN_OPCODE';

const utf8 = new TextDecoder('utf-8');
const latin1 = new TextDecoder('latin1');

/** One run of the unpickler over `buf` from `start`. */
export class Machine {
  /** Read position in `buf`. */
  pos: number;
  /** The opcode being executed and where it started (for messages). */
  op = 0;
  opAt = 0;
  /** The current stack; MARK parks it on `metastack` and starts a fresh one. */
  stack: unknown[] = [];
  readonly metastack: unknown[][] = [];
  readonly memo = new Map<number, unknown>();
  /** Arrays that are tuples (immutable in Python): APPEND refuses them. */
  readonly tuples = new WeakSet<object>();
  /** Sets that are frozensets: ADDITEMS refuses them. */
  readonly frozen = new WeakSet<object>();
  /** Values returned by makeTensor: BUILD and Parameter accept them. */
  readonly tensors = new WeakSet<object>();
  /** Values pushed so far, against maxObjects. */
  objects = 0;
  /** The first class-like global held back (a RefusedGlobal): the file is refused before any value is returned. */
  refused?: string;
  /** The first held-back class instantiated like an nn.Module (NEWOBJ with no arguments): the model, if it turns out to be one. */
  modelClass?: string;
  /** The unpickled value, set by STOP. */
  result: unknown = undefined;
  readonly len: number;
  readonly view: DataView;
  readonly file?: string;
  readonly maxDepth: number;
  readonly maxMemo: number;
  readonly maxObjects: number;

  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly options: UnpickleOptions,
  ) {
    this.pos = start;
    this.len = buf.length;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.file = options.file;
    this.maxDepth = options.maxDepth ?? 1000;
    this.maxMemo = options.maxMemo ?? 1_000_000;
    this.maxObjects = options.maxObjects ?? 20_000_000;
  }

  // ------------------------------------------------------------ errors

  /** Throws a CheckpointError naming the file, the opcode and its offset. */
  fail(code: MachineFailure, msg: string): never {
    throw new CheckpointError(code, `Cannot unpickle${inFile(this.file)}: ${opName(this.op)} at byte ${this.opAt}: ${msg}`, this.file);
  }

  /** `n` more bytes must be there, or the input is truncated. */
  need(n: number): void {
    if (n > this.len - this.pos) {
      throw new PickleTruncatedError(this.pos + n, this.len, `(${opName(this.op)} at byte ${this.opAt})`, this.file);
    }
  }

  // ------------------------------------------------------------ stack

  push(v: unknown): void {
    if (++this.objects > this.maxObjects) this.fail('LIMIT', `more than ${this.maxObjects} values`);
    this.stack.push(v);
  }

  pop(): unknown {
    if (this.stack.length === 0) this.fail('BAD_PICKLE', 'stack underflow (malformed pickle)');
    return this.stack.pop();
  }

  top(): unknown {
    if (this.stack.length === 0) this.fail('BAD_PICKLE', 'stack underflow (malformed pickle)');
    return this.stack[this.stack.length - 1];
  }

  pushMark(): void {
    if (this.metastack.length >= this.maxDepth) this.fail('LIMIT', `MARKs nested deeper than ${this.maxDepth}`);
    this.metastack.push(this.stack);
    this.stack = [];
  }

  /** The items pushed since the last MARK; the stack before it becomes current again. */
  popMark(): unknown[] {
    const items = this.stack;
    const prev = this.metastack.pop();
    if (prev === undefined) this.fail('BAD_PICKLE', 'no MARK to close (malformed pickle)');
    this.stack = prev;
    return items;
  }

  // ------------------------------------------------------------ input

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64be(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, false);
    this.pos += 8;
    return v;
  }

  /** An unsigned 64-bit length; may exceed 2^53, which need() then refuses as truncated. */
  u64(): number {
    this.need(8);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    return hi * 2 ** 32 + lo;
  }

  /** `n` bytes, copied: values must not alias the file buffer. */
  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** `n` bytes of UTF-8 text (decoding copies, so no slice is needed). */
  text(n: number): string {
    this.need(n);
    const s = utf8.decode(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }

  /** Latin-1 text up to the next newline (protocol 0 arguments). */
  line(): string {
    const nl = this.buf.indexOf(0x0a, this.pos);
    if (nl < 0) throw new PickleTruncatedError(this.len + 1, this.len, `(${opName(this.op)} at byte ${this.opAt}: no end of line)`, this.file);
    const s = latin1.decode(this.buf.subarray(this.pos, nl));
    this.pos = nl + 1;
    return s;
  }

  // ------------------------------------------------------------ memo

  // One Map operation each: the memo is the unpickler's hottest structure.
  // Stored values are never undefined (None is null), so get() alone tells.
  memoPut(index: number): void {
    this.memo.set(index, this.top());
    if (this.memo.size > this.maxMemo) this.fail('LIMIT', `more than ${this.maxMemo} memo entries`);
  }

  memoGet(index: number): void {
    const v = this.memo.get(index);
    if (v === undefined) this.fail('BAD_PICKLE', `memo entry ${index} was never stored`);
    this.push(v);
  }

  // ------------------------------------------------------------ argument checks

  expectInt(v: unknown, what: string): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail('BAD_PICKLE', `expected an integer for ${what} but received ${describe(v)}`);
    return v;
  }

  expectIntArray(v: unknown, what: string): number[] {
    if (!Array.isArray(v)) this.fail('BAD_PICKLE', `expected a tuple of integers for ${what} but received ${describe(v)}`);
    return v.map((x, i) => this.expectInt(x, `${what}[${i}]`));
  }

  /** Items of a list, tuple or set argument. */
  expectItems(v: unknown, what: string): unknown[] {
    if (Array.isArray(v)) return v;
    if (v instanceof Set) return [...v];
    return this.fail('BAD_PICKLE', `expected a sequence for ${what} but received ${describe(v)}`);
  }

  /** Marks `items` as a tuple (APPEND refuses it) and returns it. */
  tuple(items: unknown[]): unknown[] {
    this.tuples.add(items);
    return items;
  }
}
