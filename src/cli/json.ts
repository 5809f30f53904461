// JSON output of the CLI: one document, or one line per item for streams.
// Checkpoint meta can hold int64 values (BigInt), which JSON.stringify refuses.

/** JSON.stringify replacer: BigInt as a number when exact, else as a string; typed arrays as arrays. */
function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (ArrayBuffer.isView(value) && !(value instanceof DataView))
    return Array.from(value as unknown as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? Number(v) : v));
  return value;
}

/** `value` as JSON text (indented when `pretty`). */
export function toJson(value: unknown, pretty = false): string {
  return JSON.stringify(value, replacer, pretty ? 2 : undefined);
}

/** Prints one JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${toJson(value, true)}\n`);
}

/** Prints one JSON line on stdout (a stream item). */
export function printJsonLine(value: unknown): void {
  process.stdout.write(`${toJson(value)}\n`);
}
