// HTML escaping for the training report: every string that came from the
// user or the disk (class names, file paths, option values) passes through
// here before it is placed in the page, in text or in an attribute.

const ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * `s` with `& < > " '` replaced by entities: safe as element text and as a
 * quoted attribute value (both quote styles).
 *
 * @param s - any string; other values are turned into strings first
 * @returns the escaped string
 * @example
 * escapeHtml('<script>alert(1)</script>'); // '&lt;script&gt;alert(1)&lt;/script&gt;'
 */
export function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ENTITIES[c]);
}
