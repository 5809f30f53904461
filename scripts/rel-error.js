'use strict';
// The relative error the README, the tests, the bench and the GPU checks quote:
// largest |a - b| over the largest |b|.

/**
 * @param {ArrayLike<number>} a - the result
 * @param {ArrayLike<number>} b - the reference
 * @returns {number} max |a - b| / max |b| (0 when both are 0)
 */
function relError(a, b) {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / Math.max(m, 1e-30);
}

module.exports = { relError };
