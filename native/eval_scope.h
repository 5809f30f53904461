// Eval mode for the length of a call, for every path that runs the model
// outside training (inference.cc's forward, gradcam.cc's Grad-CAM).
#pragma once

#include "vgg_model.h"

namespace vggn {

/** Puts the model in eval mode and restores its training mode when the scope leaves, by return or by throw. */
class EvalScope {
 public:
  explicit EvalScope(Vgg& model) : model_(model), wasTraining_(model->is_training()) {
    if (wasTraining_) model_->eval();
  }
  ~EvalScope() {
    if (wasTraining_) model_->train(true);
  }
  EvalScope(const EvalScope&) = delete;
  EvalScope& operator=(const EvalScope&) = delete;

 private:
  Vgg& model_;
  bool wasTraining_;
};

}  // namespace vggn
