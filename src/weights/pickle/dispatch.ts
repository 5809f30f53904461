// The opcode → handler table the unpickler dispatches through: one array
// lookup per opcode. Control opcodes (framing, STOP, MARK, stack moves) are
// here; the others come from their own modules by concern.
import { checkNesting } from './nesting';
import type { Handler } from './machine';
import { HIGHEST_PROTOCOL, OP } from './opcodes';
import { CONTAINER_OPS, MEMO_OPS } from './ops-containers';
import { OBJECT_OPS } from './ops-objects';
import { VALUE_OPS } from './ops-values';
import { forbiddenGlobal } from './refusal';

const stop: Handler = (m) => {
  const value = m.pop();
  // A held-back global never reaches the caller, whatever became of it.
  if (m.refused !== undefined) throw forbiddenGlobal(m, m.refused);
  if (m.metastack.length) m.fail('BAD_PICKLE', 'STOP inside an unclosed MARK');
  checkNesting(value, m.maxDepth, m.file);
  m.result = value;
  return true;
};

const proto: Handler = (m) => {
  const version = m.u8();
  if (version > HIGHEST_PROTOCOL) m.fail('BAD_PICKLE', `unsupported pickle protocol ${version}`);
};

const CONTROL_OPS: ReadonlyArray<readonly [number, Handler]> = [
  [OP.PROTO, proto],
  [
    OP.FRAME,
    (m) => {
      m.u64();
    },
  ], // framing is only a read-ahead hint
  [OP.STOP, stop],
  [OP.MARK, (m) => m.pushMark()],
  [
    OP.POP,
    (m) => {
      m.pop();
    },
  ],
  [
    OP.POP_MARK,
    (m) => {
      m.popMark();
    },
  ],
  [OP.DUP, (m) => m.push(m.top())],
];

/** Handler by opcode byte; undefined for bytes that are no opcode we know. */
export const HANDLERS: readonly (Handler | undefined)[] = (() => {
  const table = new Array<Handler | undefined>(256).fill(undefined);
  for (const group of [CONTROL_OPS, VALUE_OPS, CONTAINER_OPS, MEMO_OPS, OBJECT_OPS]) {
    for (const [op, handler] of group) table[op] = handler;
  }
  return table;
})();
