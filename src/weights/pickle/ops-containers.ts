// Opcode handlers that build containers (tuples, lists, dicts, sets), fill
// them, and share values through the memo. Python's immutability is kept:
// APPEND refuses tuples and ADDITEMS frozensets, as CPython would fail there.
import type { Handler, Machine } from './machine';
import { OP } from './opcodes';
import { intValue } from './ops-values';
import { describe } from './values';

function setItem(m: Machine, target: unknown, k: unknown, v: unknown): void {
  if (!(target instanceof Map)) m.fail('BAD_PICKLE', `can only set items on a dict but the target is ${describe(target)}`);
  target.set(k, v);
}

function appendTarget(m: Machine, target: unknown): unknown[] {
  if (!Array.isArray(target) || m.tuples.has(target)) m.fail('BAD_PICKLE', `can only append to a list but the target is ${describe(target)}`);
  return target;
}

const dict: Handler = (m) => {
  const items = m.popMark();
  if (items.length % 2) m.fail('BAD_PICKLE', 'odd number of dict items');
  const d = new Map<unknown, unknown>();
  for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
  m.push(d);
};

const frozenset: Handler = (m) => {
  const s = new Set(m.popMark());
  m.frozen.add(s);
  m.push(s);
};

const append: Handler = (m) => {
  const v = m.pop();
  appendTarget(m, m.top()).push(v);
};

/** A loop, not push(...items), so big groups cannot overflow the call stack. */
const appends: Handler = (m) => {
  const items = m.popMark();
  const list = appendTarget(m, m.top());
  for (let i = 0; i < items.length; i++) list.push(items[i]);
};

const setitem: Handler = (m) => {
  const v = m.pop();
  const k = m.pop();
  setItem(m, m.top(), k, v);
};

const setitems: Handler = (m) => {
  const items = m.popMark();
  if (items.length % 2) m.fail('BAD_PICKLE', 'odd number of SETITEMS values');
  const target = m.top();
  for (let i = 0; i < items.length; i += 2) setItem(m, target, items[i], items[i + 1]);
};

const additems: Handler = (m) => {
  const items = m.popMark();
  const target = m.top();
  if (!(target instanceof Set) || m.frozen.has(target))
    return m.fail('BAD_PICKLE', `can only add items to a set but the target is ${describe(target)}`);
  for (const v of items) target.add(v);
};

const tuple2: Handler = (m) => {
  const b = m.pop();
  const a = m.pop();
  m.push(m.tuple([a, b]));
};

const tuple3: Handler = (m) => {
  const c = m.pop();
  const b = m.pop();
  const a = m.pop();
  m.push(m.tuple([a, b, c]));
};

export const CONTAINER_OPS: ReadonlyArray<readonly [number, Handler]> = [
  [OP.EMPTY_TUPLE, (m) => m.push(m.tuple([]))],
  [OP.EMPTY_LIST, (m) => m.push([])],
  [OP.EMPTY_DICT, (m) => m.push(new Map())],
  [OP.EMPTY_SET, (m) => m.push(new Set())],
  [OP.TUPLE, (m) => m.push(m.tuple(m.popMark()))],
  [OP.TUPLE1, (m) => m.push(m.tuple([m.pop()]))],
  [OP.TUPLE2, tuple2],
  [OP.TUPLE3, tuple3],
  [OP.LIST, (m) => m.push(m.popMark())],
  [OP.DICT, dict],
  [OP.FROZENSET, frozenset],
  [OP.APPEND, append],
  [OP.APPENDS, appends],
  [OP.SETITEM, setitem],
  [OP.SETITEMS, setitems],
  [OP.ADDITEMS, additems],
];

export const MEMO_OPS: ReadonlyArray<readonly [number, Handler]> = [
  [OP.BINGET, (m) => m.memoGet(m.u8())],
  [OP.LONG_BINGET, (m) => m.memoGet(m.u32())],
  [OP.GET, (m) => m.memoGet(m.expectInt(intValue(m, m.line()), 'GET index'))],
  [OP.BINPUT, (m) => m.memoPut(m.u8())],
  [OP.LONG_BINPUT, (m) => m.memoPut(m.u32())],
  [OP.PUT, (m) => m.memoPut(m.expectInt(intValue(m, m.line()), 'PUT index'))],
  [OP.MEMOIZE, (m) => m.memoPut(m.memo.size)],
];
