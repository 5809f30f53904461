// freeze: LibTorch's model fixes mmcls frozen_stages when it is built (the
// stages' parameters lose requires_grad and their batch norm stays in eval
// mode), so fineTune cannot change it; it refuses a freeze other than the
// model's.
import type { ModelCore } from '../core/model-core';
import { outOfRange } from '../validate';

/** Stages 0..n-1 whose parameters get no gradient (mmcls's -1 = none = 0). */
export function frozenStagesOf(model: ModelCore): number {
  return Math.max(0, model.backbone.frozenStages);
}

/** @throws RangeError 'ERR_OUT_OF_RANGE' when options.freeze differs from the model's frozenStages */
export function checkFreeze(model: ModelCore, wanted: number | undefined): void {
  if (wanted === undefined) return;
  const has = frozenStagesOf(model);
  if (has === wanted) return;
  const what = wanted === 0 ? "'none'" : wanted === 5 ? "'features'" : String(wanted);
  throw outOfRange(
    `Expected a model built with frozenStages ${wanted} for options.freeze ${what} but received a model with frozenStages ${has}: ` +
      `freezing is fixed when the model is built, so create it with vgg('${model.arch}', { frozenStages: ${wanted}, ... })`,
  );
}
