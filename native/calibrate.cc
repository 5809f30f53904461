#include "calibrate.h"

#include <algorithm>
#include <cmath>

#include "eval_scope.h"
#include "runtime.h"

namespace vggn {

namespace {

void accumulate(const torch::Tensor& x, size_t i, CalibrationStats& s) {
  auto a = x.detach().abs().to(torch::kCPU, torch::kFloat32).contiguous();
  double m = a.max().item<double>();
  s.absmax[i] = std::max(s.absmax[i], m);
  auto& hist = s.hist[i];
  double& range = s.range[i];
  if (m > range) {
    if (range <= 0) {
      range = m;  // nothing above 0 seen yet: every count so far is in bin 0, which stays bin 0
    } else {
      int64_t factor = 1;
      while (range * factor < m) factor *= 2;
      std::vector<double> merged(kCalibrationBins, 0.0);
      for (int64_t b = 0; b < kCalibrationBins; ++b) merged[b / factor] += hist[b];
      hist = std::move(merged);
      range *= factor;
    }
  }
  if (range <= 0) {
    hist[0] += static_cast<double>(a.numel());
    return;
  }
  auto counts = torch::histc(a, kCalibrationBins, 0, range).to(torch::kFloat64);
  const double* c = counts.data_ptr<double>();
  for (int64_t b = 0; b < kCalibrationBins; ++b) hist[b] += c[b];
}

}  // namespace

void calibrateBatch(Vgg& model, const torch::Device& device, const torch::Tensor& input, const std::optional<PixelNormalize>& normalize,
                    CalibrationStats& stats) {
  c10::InferenceMode inference;
  EvalScope eval(model);
  auto x = normalize ? pixelsToInput(input, *normalize, device) : toDevice(input, device);
  TORCH_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(0) > 0, "calibrate: expected a non-empty batch [N, 3, H, W]");
  auto layers = model->trunkLayers();
  size_t convs = 0;
  for (auto& l : layers) convs += l.conv ? 1 : 0;
  if (stats.absmax.empty()) {
    stats.absmax.assign(convs, 0.0);
    stats.range.assign(convs, 0.0);
    stats.hist.assign(convs, std::vector<double>(kCalibrationBins, 0.0));
  }
  TORCH_CHECK(stats.absmax.size() == convs, "calibrate: the statistics are for another architecture");
  const bool ceil = model->config().ceilMode;
  size_t i = 0;
  for (auto& l : layers) {
    if (l.conv) {
      accumulate(x, i++, stats);
      x = l.conv->forward(x);
    } else {
      x = torch::max_pool2d(x, {2, 2}, {2, 2}, {0, 0}, {1, 1}, ceil);
    }
  }
  stats.images += input.size(0);
}

std::vector<float> finishCalibration(const CalibrationStats& s, const std::string& method, double percentile) {
  TORCH_CHECK(s.images > 0 && !s.absmax.empty(), "finishCalibration: no calibration batch was run");
  TORCH_CHECK(method == "minmax" || method == "percentile", "finishCalibration: method must be 'minmax' or 'percentile', got '", method,
              "'");
  TORCH_CHECK(percentile > 0 && percentile <= 100, "finishCalibration: percentile must be in (0, 100], got ", percentile);
  std::vector<float> scales(s.absmax.size());
  for (size_t i = 0; i < scales.size(); ++i) {
    double threshold = s.absmax[i];
    if (method == "percentile" && s.range[i] > 0) {
      double total = 0;
      for (double c : s.hist[i]) total += c;
      double want = total * percentile / 100.0, seen = 0;
      for (int64_t b = 0; b < kCalibrationBins; ++b) {
        seen += s.hist[i][b];
        if (seen >= want) {
          threshold = std::min(threshold, (b + 1) * s.range[i] / kCalibrationBins);
          break;
        }
      }
    }
    threshold = std::max(threshold, 1e-8);
    scales[i] = static_cast<float>(threshold / (i == 0 ? 127.0 : 255.0));
  }
  return scales;
}

}  // namespace vggn
