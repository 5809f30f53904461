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

/** A positive safe integer, without throwing: for callers that compose their own check. */
export function isPositiveInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

/** A finite number of at least `min` (no upper bound): jitter factors and the like. */
export function checkNumberAtLeast(param: string, v: unknown, min: number): number {
  if (typeof v !== 'number') throw invalidType(param, `a finite number of at least ${min}`, v);
  if (!Number.isFinite(v) || v < min) throw invalidRange(param, `a finite number of at least ${min}`, v);
  return v;
}

/** A share in [0, 1): a fraction held out, never the whole. */
export function checkFraction(param: string, v: unknown): number {
  if (typeof v !== 'number') throw invalidType(param, 'a number in [0, 1)', v);
  if (!(v >= 0 && v < 1)) throw invalidRange(param, 'a number in [0, 1)', v);
  return v;
}

/**
 * Three per-channel numbers (an array or a typed array), finite, and positive
 * when `positive`: mean / std. A wrong kind is a TypeError, a wrong length or
 * value a RangeError naming the element (`options.std[1]`).
 */
export function checkTriple(param: string, v: unknown, positive: boolean): [number, number, number] {
  const what = positive ? 'positive' : 'finite';
  if (!Array.isArray(v) && !(ArrayBuffer.isView(v) && !(v instanceof DataView))) throw invalidType(param, `an array of 3 ${what} numbers`, v);
  const list = Array.from(v as ArrayLike<unknown>);
  if (list.length !== 3) throw invalidRange(param, `an array of 3 ${what} numbers`, v);
  const out = list.map((x, i) => {
    if (typeof x !== 'number') throw invalidType(`${param}[${i}]`, `a ${what} number`, x);
    if (!Number.isFinite(x) || (positive && x <= 0)) throw invalidRange(`${param}[${i}]`, `a ${what} number`, x);
    return x;
  });
  return [out[0], out[1], out[2]];
}

/**
 * An interval [lo, hi] with `above` < lo <= hi <= `max`: random-crop scale
 * and ratio ranges. Not an array of numbers: TypeError; else RangeError.
 */
export function checkInterval(param: string, v: unknown, above: number, max = Number.POSITIVE_INFINITY): [number, number] {
  const expected = `[lo, hi] with ${above} < lo <= hi${Number.isFinite(max) ? ` <= ${max}` : ''}`;
  if (!Array.isArray(v)) throw invalidType(param, expected, v);
  v.forEach((x, i) => {
    if (typeof x !== 'number') throw invalidType(`${param}[${i}]`, 'a number', x);
  });
  if (v.length !== 2 || !v.every((x) => Number.isFinite(x) && x > above && x <= max) || v[0] > v[1]) throw invalidRange(param, expected, v);
  return [v[0], v[1]];
}

/**
 * An image size in pixels: one side (a square) or [height, width], each an
 * integer in 1..`max`; returned as [height, width].
 */
export function checkSize(param: string, v: unknown, max: number): [number, number] {
  const expected = `an integer between 1 and ${max} or [height, width] of them`;
  if (typeof v === 'number') {
    const side = checkInteger(param, v, 1, max);
    return [side, side];
  }
  if (!Array.isArray(v)) throw invalidType(param, expected, v);
  if (v.length !== 2) throw invalidRange(param, expected, v);
  return [checkInteger(`${param}[0]`, v[0], 1, max), checkInteger(`${param}[1]`, v[1], 1, max)];
}

/** Class names: a non-empty array of distinct non-empty strings. */
export function checkClassNames(param: string, v: unknown): string[] {
  if (!Array.isArray(v)) throw invalidType(param, 'an array of class names', v);
  v.forEach((c, i) => {
    if (typeof c !== 'string' || c.length === 0) throw invalidType(`${param}[${i}]`, 'a non-empty string', c);
  });
  const dup = v.find((c, i) => v.indexOf(c) !== i);
  if (dup !== undefined) throw invalidRange(param, `distinct names ('${dup}' appears twice)`, v);
  if (v.length === 0) throw invalidRange(param, 'at least one class name', v);
  return [...v] as string[];
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
