// Pickle opcodes, named once (as CPython's Lib/pickle.py names them) for the
// unpickler's dispatch table, the checkpoint writer and error messages.

/** Every opcode of pickle protocols 0-5, by CPython's name. */
export const OP = {
  // Protocol 0/1
  MARK: 0x28, // '(' push the mark
  STOP: 0x2e, // '.' end of the pickle
  POP: 0x30, // '0' discard the top of the stack
  POP_MARK: 0x31, // '1' discard up to the mark
  DUP: 0x32, // '2' duplicate the top
  FLOAT: 0x46, // 'F' float as decimal text
  INT: 0x49, // 'I' int as decimal text (or 01/00 for booleans)
  BININT: 0x4a, // 'J' 4-byte signed int
  BININT1: 0x4b, // 'K' 1-byte unsigned int
  LONG: 0x4c, // 'L' long as decimal text
  BININT2: 0x4d, // 'M' 2-byte unsigned int
  NONE: 0x4e, // 'N'
  PERSID: 0x50, // 'P' persistent id as text
  BINPERSID: 0x51, // 'Q' persistent id from the stack
  REDUCE: 0x52, // 'R' call a callable with an argument tuple
  STRING: 0x53, // 'S' quoted str (Python 2 repr)
  BINSTRING: 0x54, // 'T' str, 4-byte length
  SHORT_BINSTRING: 0x55, // 'U' str, 1-byte length
  UNICODE: 0x56, // 'V' raw-unicode-escape text
  BINUNICODE: 0x58, // 'X' UTF-8, 4-byte length
  EMPTY_LIST: 0x5d, // ']'
  APPEND: 0x61, // 'a'
  BUILD: 0x62, // 'b' __setstate__ / dict update
  GLOBAL: 0x63, // 'c' module and name as two lines
  DICT: 0x64, // 'd' dict from the items since the mark
  APPENDS: 0x65, // 'e'
  GET: 0x67, // 'g' memo index as text
  BINGET: 0x68, // 'h' memo index, 1 byte
  INST: 0x69, // 'i' build a class instance
  LONG_BINGET: 0x6a, // 'j' memo index, 4 bytes
  LIST: 0x6c, // 'l' list from the items since the mark
  OBJ: 0x6f, // 'o' build a class instance
  PUT: 0x70, // 'p' memo index as text
  BINPUT: 0x71, // 'q' memo index, 1 byte
  LONG_BINPUT: 0x72, // 'r' memo index, 4 bytes
  SETITEM: 0x73, // 's'
  TUPLE: 0x74, // 't' tuple from the items since the mark
  EMPTY_TUPLE: 0x29, // ')'
  SETITEMS: 0x75, // 'u'
  BINFLOAT: 0x47, // 'G' 8-byte big-endian double
  EMPTY_DICT: 0x7d, // '}'
  // Protocol 2
  PROTO: 0x80,
  NEWOBJ: 0x81,
  EXT1: 0x82,
  EXT2: 0x83,
  EXT4: 0x84,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  LONG1: 0x8a, // two's complement int, 1-byte length
  LONG4: 0x8b, // two's complement int, 4-byte length
  // Protocol 3
  BINBYTES: 0x42, // 'B' bytes, 4-byte length
  SHORT_BINBYTES: 0x43, // 'C' bytes, 1-byte length
  // Protocol 4
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  BINBYTES8: 0x8e,
  EMPTY_SET: 0x8f,
  ADDITEMS: 0x90,
  FROZENSET: 0x91,
  NEWOBJ_EX: 0x92,
  STACK_GLOBAL: 0x93,
  MEMOIZE: 0x94,
  FRAME: 0x95,
  // Protocol 5
  BYTEARRAY8: 0x96,
  NEXT_BUFFER: 0x97,
  READONLY_BUFFER: 0x98,
} as const;

export type OpName = keyof typeof OP;

/** Name by opcode byte (undefined where no opcode has that byte). */
const NAMES: readonly (string | undefined)[] = (() => {
  const names = new Array<string | undefined>(256);
  for (const [name, code] of Object.entries(OP)) names[code] = name;
  return names;
})();

/** The opcode's name for messages, or `opcode 0xNN` for a byte that is none. */
export function opName(op: number): string {
  return NAMES[op] ?? `opcode 0x${op.toString(16).padStart(2, '0')}`;
}

/** The highest pickle protocol (PROTO argument) the reader accepts. */
export const HIGHEST_PROTOCOL = 5;
