// Reading a .pth as a user of the package would: the object, then every tensor in it.
import { materialize, readPth, TensorRef } from '../../src/weights/pth';

/** Reads the file and materializes every tensor found. */
export async function readAll(file: string): Promise<void> {
  const { object } = await readPth(file);
  const todo: unknown[] = [object];
  while (todo.length) {
    const v = todo.pop();
    if (v instanceof TensorRef) await materialize(v);
    else if (v instanceof Map) todo.push(...v.values());
    else if (Array.isArray(v)) todo.push(...v);
  }
}
