// JSON.parse keeps the last of two equal keys without a word; a header that
// names a tensor twice is ambiguous, so the raw text is scanned for repeated
// keys. Iterative (an explicit stack), so deep nesting cannot overflow.

/** A key that appears twice in one object, and how deep that object is (1 = the header's top level). */
export interface DuplicateKey {
  key: string;
  depth: number;
}

/**
 * The first key repeated within one object of `text`, at any depth.
 * `text` must already be valid JSON (JSON.parse accepted it).
 */
export function firstDuplicateKey(text: string): DuplicateKey | undefined {
  const stack: Array<Set<string> | null> = []; // one entry per open object (a Set) or array (null)
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = closingQuote(text, i);
      const keys = stack[stack.length - 1];
      if (expectKey && keys) {
        const key = keyText(text, i, end);
        if (keys.has(key)) return { key, depth: stack.length };
        keys.add(key);
        expectKey = false;
      }
      i = end;
    } else if (c === OPEN_OBJECT) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === OPEN_ARRAY) {
      stack.push(null);
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      stack.pop();
    } else if (c === COMMA) {
      expectKey = stack[stack.length - 1] != null;
    }
  }
  return undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/** The key's text; escapes decoded ("a" and "\u0061" are one key), the common escape-free key sliced as is. */
function keyText(text: string, open: number, close: number): string {
  const raw = text.slice(open + 1, close);
  return raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
}

/** Index of the quote closing the string that opens at `start` (escaped quotes skipped). */
function closingQuote(text: string, start: number): number {
  let at = text.indexOf('"', start + 1);
  while (at > 0 && escaped(text, at)) at = text.indexOf('"', at + 1);
  return at < 0 ? text.length : at;
}

/** An odd run of backslashes before `at` escapes it. */
function escaped(text: string, at: number): boolean {
  let n = 0;
  while (text.charCodeAt(at - 1 - n) === BACKSLASH) n++;
  return n % 2 === 1;
}
