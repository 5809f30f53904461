// freeze: LibTorch's model fixes mmcls frozen_stages when it is built (the
// stages' parameters lose requires_grad and their batch norm stays in eval
// mode), so fineTune cannot change it; it reads which stages the model has
// frozen from its trainable-parameter count and refuses a mismatch.
import type { ModelCore } from '../core/model-core';
import { outOfRange } from '../validate';

/** Stages 0..n-1 whose parameters get no gradient, inferred from summary(); undefined if no prefix of stages fits. */
export function frozenStagesOf(model: ModelCore): number | undefined {
  const s = model.summary(224, 224);
  const stageParams: number[] = [];
  let current = 0;
  for (const l of s.layers) {
    if (!l.name.startsWith('features.')) continue;
    current += l.params;
    if (l.type.startsWith('MaxPool')) {
      stageParams.push(current);
      current = 0;
    }
  }
  if (current > 0) stageParams.push(current); // withLastPool false: the last stage has no pool
  let frozen = s.params - s.trainableParams;
  for (let n = 0; n <= stageParams.length; n++) {
    if (frozen === 0) return n;
    if (n === stageParams.length) break;
    frozen -= stageParams[n];
  }
  return undefined;
}

export function checkFreeze(model: ModelCore, wanted: number | undefined): void {
  if (wanted === undefined) return;
  const has = frozenStagesOf(model);
  if (has === wanted) return;
  const what = wanted === 0 ? "'none'" : wanted === 5 ? "'features'" : String(wanted);
  throw outOfRange(
    `Expected a model built with frozenStages ${wanted} for options.freeze ${what} but received a model with ` +
      `${has === undefined ? 'a frozen set that is not a prefix of stages' : `frozenStages ${has}`}: freezing is fixed when the model is built, ` +
      `so create it with vgg('${model.arch}', { frozenStages: ${wanted}, ... })`,
  );
}
