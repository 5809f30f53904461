// Input checks for the public API, done once at the TypeScript boundary.
// Messages follow sharp's form: "Expected <what> for <parameter> but
// received <value> of type <type>".

function describe(value: unknown): string {
  let shown: string;
  if (typeof value === 'string') shown = JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  else if (typeof value === 'bigint') shown = `${value}n`;
  else if (Array.isArray(value))
    shown = `[${value
      .slice(0, 6)
      .map((v) => (typeof v === 'object' && v !== null ? '…' : String(v)))
      .join(', ')}${value.length > 6 ? ', …' : ''}]`;
  else if (ArrayBuffer.isView(value)) shown = `${value.constructor.name}(${(value as unknown as { length?: number }).length ?? value.byteLength})`;
  else if (typeof value === 'object' && value !== null)
    shown = value.constructor?.name && value.constructor.name !== 'Object' ? value.constructor.name : 'object';
  else shown = String(value);
  const type = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  return `${shown} of type ${type}`;
}

/** A TypeError with code 'ERR_INVALID_ARG_TYPE' (Node core's kind for a value of the wrong type). */
export function invalidType(param: string, expected: string, value: unknown): TypeError & { code: 'ERR_INVALID_ARG_TYPE' } {
  return Object.assign(new TypeError(`Expected ${expected} for ${param} but received ${describe(value)}`), { code: 'ERR_INVALID_ARG_TYPE' as const });
}

/** A RangeError with code 'ERR_OUT_OF_RANGE' (Node core's kind for a value of the right type outside what is allowed). */
export function invalidRange(param: string, expected: string, value: unknown): RangeError & { code: 'ERR_OUT_OF_RANGE' } {
  return Object.assign(new RangeError(`Expected ${expected} for ${param} but received ${describe(value)}`), { code: 'ERR_OUT_OF_RANGE' as const });
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

export function checkObject(param: string, v: unknown): Record<string, unknown> {
  if (v === undefined) return {};
  if (!isPlainObject(v)) throw invalidType(param, 'an object', v);
  return v;
}

export function checkInteger(param: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number') throw invalidType(param, `an integer between ${min} and ${max}`, v);
  if (!Number.isInteger(v) || v < min || v > max) throw invalidRange(param, `an integer between ${min} and ${max}`, v);
  return v;
}

export function checkNumber(param: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number') throw invalidType(param, `a number between ${min} and ${max}`, v);
  if (!Number.isFinite(v) || v < min || v > max) throw invalidRange(param, `a number between ${min} and ${max}`, v);
  return v;
}

export function checkBoolean(param: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw invalidType(param, 'a boolean', v);
  return v;
}

export function checkString(param: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) throw invalidType(param, 'a non-empty string', v);
  return v;
}

export function checkOneOf<T extends string>(param: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw (typeof v === 'string' ? invalidRange : invalidType)(param, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, v);
  }
  return v as T;
}

export function checkIntegerList(param: string, v: unknown, min: number, max: number, length?: number): number[] {
  if (!Array.isArray(v)) throw invalidType(param, `an array of integers between ${min} and ${max}`, v);
  if (length !== undefined && v.length !== length) throw invalidRange(param, `an array of ${length} integers`, v);
  return v.map((x, i) => checkInteger(`${param}[${i}]`, x, min, max));
}

export function checkAbortSignal(param: string, v: unknown): AbortSignal | undefined {
  if (v === undefined) return undefined;
  if (!(v instanceof AbortSignal)) throw invalidType(param, 'an AbortSignal', v);
  return v;
}

/** Class names: one string per class. */
export function checkLabels(param: string, v: unknown, numClasses: number): string[] {
  if (!Array.isArray(v) || !v.every((l) => typeof l === 'string')) throw invalidType(param, 'an array of strings', v);
  if (v.length !== numClasses) throw invalidRange(param, `${numClasses} class names (one per class)`, v);
  return [...v];
}

/**
 * The option names of interface T, checked by the compiler both ways: each
 * listed key is a key of T, and a key of T left out is a type error naming it.
 * `keysOf<FooOptions>()(['a', 'b'] as const)`.
 */
export function keysOf<T>() {
  return <const K extends readonly (keyof T & string)[]>(
    keys: K & ([Exclude<keyof T, K[number]>] extends [never] ? unknown : { missingKeys: Exclude<keyof T, K[number]> }),
  ): K => keys;
}

/** Rejects keys outside `keys` (ERR_OUT_OF_RANGE); a key whose value is undefined counts as absent. */
export function checkKnownKeys<K extends string>(param: string, o: Record<string, unknown>, keys: readonly K[]): Record<string, unknown> {
  for (const key of Object.keys(o)) {
    if (!(keys as readonly string[]).includes(key) && o[key] !== undefined) throw invalidRange(param, `only the keys ${keys.join(', ')}`, key);
  }
  return o;
}

/** `fallback` when `v` is undefined, else `check(v)`: the one way an option gets its default. */
export function orDefault<T>(v: unknown, fallback: T, check: (v: unknown) => T): T {
  return v === undefined ? fallback : check(v);
}

/** A TypeError with code 'ERR_INVALID_ARG_TYPE' and a message of the caller's (when the usual form does not fit). */
export function wrongType(message: string): TypeError & { code: 'ERR_INVALID_ARG_TYPE' } {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG_TYPE' as const });
}

/** A RangeError with code 'ERR_OUT_OF_RANGE' and a message of the caller's (when the usual form does not fit). */
export function outOfRange(message: string): RangeError & { code: 'ERR_OUT_OF_RANGE' } {
  return Object.assign(new RangeError(message), { code: 'ERR_OUT_OF_RANGE' as const });
}
