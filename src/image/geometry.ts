// Size arithmetic of the mmcls 0.x test pipeline, reproduced exactly so our
// crops land on the same pixels as Python's.

/**
 * mmcls `Resize(size=(short, -1), adaptive_side='short')`: the short side
 * becomes `short`, the long side `int(short * long / shortSide)` (truncated,
 * not rounded). Width is the short side when w < h; a square goes by height.
 * Returns null when the short side already equals `short` (mmcls skips the resize).
 */
export function shortSideSize(width: number, height: number, short: number): { width: number; height: number } | null {
  if (Math.min(width, height) === short) return null;
  // Same float operations as Python's `int(short * h / w)`: short*h is an exact
  // integer, so the quotient rounds identically in both languages.
  return width < height
    ? { width: short, height: Math.floor((short * height) / width) }
    : { width: Math.floor((short * width) / height), height: short };
}

/** Python's round(): half to even (mmcls and torchvision use it for crop offsets). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** mmcls `CenterCrop`: top/left = int(round((size - crop) / 2)). */
export function centerCropBox(
  width: number,
  height: number,
  cropWidth: number,
  cropHeight: number,
): { left: number; top: number; width: number; height: number } {
  return {
    left: Math.max(0, roundHalfEven((width - cropWidth) / 2)),
    top: Math.max(0, roundHalfEven((height - cropHeight) / 2)),
    width: Math.min(cropWidth, width),
    height: Math.min(cropHeight, height),
  };
}
