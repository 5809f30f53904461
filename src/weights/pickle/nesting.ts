// The check STOP runs on the finished value: no cycles and no nesting deeper
// than maxDepth, so code walking the value later (layout detection, the
// nesting of a state_dict in meta) can recurse safely.
import { CheckpointError, inFile } from '../errors';
import { InertObject, NumpyArray, ScriptObject, attributes, namespaces } from './values';

type Container = unknown[] | Map<unknown, unknown> | Set<unknown> | ScriptObject | InertObject | NumpyArray | Record<string, unknown>;

function isContainer(v: unknown): v is Container {
  return (
    Array.isArray(v) ||
    v instanceof Map ||
    v instanceof Set ||
    v instanceof ScriptObject ||
    v instanceof InertObject ||
    v instanceof NumpyArray ||
    (v !== null && typeof v === 'object' && namespaces.has(v))
  );
}

/** Items, keys and values, BUILD attributes of a dict, a record's attributes, an object array's items. */
function* childrenOf(v: Container): Generator<unknown> {
  if (Array.isArray(v) || v instanceof Set) {
    yield* v;
    return;
  }
  if (v instanceof NumpyArray) {
    yield* v.items ?? [];
    return;
  }
  if (v instanceof InertObject) {
    yield* v.attributes.values();
    return;
  }
  if (v instanceof ScriptObject) {
    yield v.state;
    return;
  }
  if (!(v instanceof Map)) {
    yield* Object.values(v);
    return;
  }
  for (const [k, x] of v) {
    yield k;
    yield x;
  }
  const attrs = attributes.get(v);
  if (attrs)
    for (const [k, x] of attrs) {
      yield k;
      yield x;
    }
}

/**
 * Rejects cycles and nesting deeper than maxDepth in the result, with an
 * explicit stack (no recursion: the check must not overflow on the very
 * input it guards against). Heights are memoised, so shared sub-objects are
 * visited once.
 * @throws CheckpointError LIMIT (too deep) or BAD_PICKLE (a cycle).
 */
export function checkNesting(root: unknown, maxDepth: number, file?: string): void {
  if (!isContainer(root)) return;
  const tooDeep = () => new CheckpointError('LIMIT', `Cannot unpickle${inFile(file)}: containers nested deeper than ${maxDepth}`, file);
  const height = new Map<object, number>();
  const onPath = new Set<object>();
  const path: Array<{ node: Container; it: Iterator<unknown>; h: number }> = [];
  const enter = (node: Container): void => {
    if (path.length >= maxDepth) throw tooDeep();
    onPath.add(node);
    path.push({ node, it: childrenOf(node), h: 0 });
  };
  enter(root);
  while (path.length) {
    const frame = path[path.length - 1];
    const next = frame.it.next();
    if (!next.done) {
      const c = next.value;
      if (!isContainer(c)) continue;
      if (onPath.has(c))
        throw new CheckpointError(
          'BAD_PICKLE',
          `Cannot unpickle${inFile(file)}: a container contains itself (cyclic data is not a checkpoint)`,
          file,
        );
      const h = height.get(c);
      if (h === undefined) {
        enter(c);
        continue;
      }
      frame.h = Math.max(frame.h, h + 1);
      continue;
    }
    path.pop();
    onPath.delete(frame.node);
    height.set(frame.node, frame.h);
    if (frame.h >= maxDepth) throw tooDeep();
    if (path.length) path[path.length - 1].h = Math.max(path[path.length - 1].h, frame.h + 1);
  }
}
