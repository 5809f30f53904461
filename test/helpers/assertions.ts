import { strict as assert } from 'node:assert';

/** Awaits `p`, which must reject with an instance of `type` whose message matches `re`; returns the error. */
export async function rejectsWithType(p: Promise<unknown>, re: RegExp, type: abstract new (...args: never[]) => Error = Error): Promise<Error> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof type, `expected ${type.name}, got ${String(caught)}`);
  assert.match((caught as Error).message, re);
  return caught as Error;
}
