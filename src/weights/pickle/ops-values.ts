// Opcode handlers that push plain values: None, booleans, integers in every
// encoding, floats, text and bytes. Lengths come from the input and are
// bounded by Machine.need(), so a 2 GB length in a 100-byte pickle is a
// truncation error, not an allocation.
import type { Handler, Machine } from './machine';
import { OP } from './opcodes';
import { pyStringLiteral, rawUnicodeEscape } from './text';

/** Longest LONG1/LONG4 integer accepted: larger ones only serve to burn CPU. */
const MAX_LONG_BYTES = 1024;
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** A number where it is exact, a bigint beyond 2^53. */
function narrow(b: bigint): number | bigint {
  return b >= MIN_SAFE && b <= MAX_SAFE ? Number(b) : b;
}

/** Decimal text of INT/LONG/GET/PUT (Python 2 longs end in 'L'). */
export function intValue(m: Machine, s: string): number | bigint {
  const t = s.endsWith('L') ? s.slice(0, -1) : s;
  if (!/^[-+]?\d+$/.test(t) || t.length > 400) m.fail('BAD_PICKLE', `not an integer: ${JSON.stringify(s.slice(0, 40))}`);
  return narrow(BigInt(t));
}

/** n bytes of little-endian two's complement (LONG1/LONG4). */
function longValue(m: Machine, n: number): number | bigint {
  if (n > MAX_LONG_BYTES) m.fail('LIMIT', `integer of ${n} bytes (at most ${MAX_LONG_BYTES} accepted)`);
  m.need(n);
  if (n === 0) return 0;
  const { buf, pos } = m;
  let b = 0n;
  for (let i = n - 1; i >= 0; i--) b = (b << 8n) | BigInt(buf[pos + i]);
  if (buf[pos + n - 1] & 0x80) b -= 1n << BigInt(8 * n);
  m.pos += n;
  return narrow(b);
}

/** A 4-byte signed length that must not be negative. */
function length32(m: Machine, what: string): number {
  const n = m.i32();
  if (n < 0) m.fail('BAD_PICKLE', `negative ${what} length`);
  return n;
}

const floatText: Handler = (m) => {
  const s = m.line();
  const v = Number(s);
  if (Number.isNaN(v) && !/nan/i.test(s)) m.fail('BAD_PICKLE', 'not a float');
  m.push(v);
};

const intText: Handler = (m) => {
  const s = m.line();
  m.push(s === '01' ? true : s === '00' ? false : intValue(m, s));
};

const quotedString: Handler = (m) => {
  const s = pyStringLiteral(m.line());
  if (s === undefined) m.fail('BAD_PICKLE', 'STRING is not quoted');
  m.push(s);
};

export const VALUE_OPS: ReadonlyArray<readonly [number, Handler]> = [
  [OP.NONE, (m) => m.push(null)],
  [OP.NEWTRUE, (m) => m.push(true)],
  [OP.NEWFALSE, (m) => m.push(false)],
  [OP.BININT, (m) => m.push(m.i32())],
  [OP.BININT1, (m) => m.push(m.u8())],
  [OP.BININT2, (m) => m.push(m.u16())],
  [OP.LONG1, (m) => m.push(longValue(m, m.u8()))],
  [OP.LONG4, (m) => m.push(longValue(m, length32(m, 'LONG4')))],
  [OP.INT, intText],
  [OP.LONG, (m) => m.push(intValue(m, m.line()))],
  [OP.FLOAT, floatText],
  [OP.BINFLOAT, (m) => m.push(m.f64be())],
  [OP.BINUNICODE, (m) => m.push(m.text(m.u32()))],
  [OP.SHORT_BINUNICODE, (m) => m.push(m.text(m.u8()))],
  [OP.BINUNICODE8, (m) => m.push(m.text(m.u64()))],
  [OP.BINSTRING, (m) => m.push(m.text(length32(m, 'BINSTRING')))],
  [OP.SHORT_BINSTRING, (m) => m.push(m.text(m.u8()))],
  [OP.STRING, quotedString],
  [OP.UNICODE, (m) => m.push(rawUnicodeEscape(m.line()))],
  [OP.BINBYTES, (m) => m.push(m.bytes(m.u32()))],
  [OP.SHORT_BINBYTES, (m) => m.push(m.bytes(m.u8()))],
  [OP.BINBYTES8, (m) => m.push(m.bytes(m.u64()))],
  [OP.BYTEARRAY8, (m) => m.push(m.bytes(m.u64()))],
];
