// Post-training static calibration for the int8 trunk (native/onednn_trunk.cc):
// the float32 trunk runs layer by layer in LibTorch (eager, not the hot path)
// over calibration batches, and each convolution's input is summarised:
// - its running max |x| (the 'minmax' method);
// - a histogram of |x| over kCalibrationBins equal bins of [0, range], for the
//   'percentile' method. `range` starts at the first batch's max; when a batch
//   exceeds it, it doubles as many times as needed and bins are merged in
//   groups of 2^k, so the histogram stays exact at its resolution in one pass.
// finishCalibration turns the summaries into input scales: threshold / 127 for
// the first convolution (its input, the normalised image, is signed: s8) and
// threshold / 255 for the others (post-ReLU, post-pool: u8).
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "inference.h"
#include "vgg_model.h"

namespace vggn {

constexpr int64_t kCalibrationBins = 2048;

struct CalibrationStats {
  int64_t images = 0;
  std::vector<double> absmax;             // per convolution
  std::vector<double> range;              // per convolution: the histogram covers [0, range]
  std::vector<std::vector<double>> hist;  // per convolution, kCalibrationBins counts
};

/**
 * Accumulates one batch into `stats`: float32 NCHW, or [N, H, W, 3] uint8 pixels
 * with `normalize`. Runs on the model's device, in eval mode, without gradients.
 */
void calibrateBatch(Vgg& model, const torch::Device& device, const torch::Tensor& input, const std::optional<PixelNormalize>& normalize,
                    CalibrationStats& stats);

/**
 * Each convolution's input scale: method "minmax" (threshold = max |x|) or
 * "percentile" (threshold = the `percentile`-th percentile of |x|, upper bin edge,
 * at most max |x|). Throws when no image was accumulated.
 */
std::vector<float> finishCalibration(const CalibrationStats& stats, const std::string& method, double percentile);

}  // namespace vggn
