/** max |a - b| / max |b| (scripts/rel-error.js). */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number;
