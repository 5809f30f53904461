#include "onednn_trunk.h"

#include "runtime.h"

#ifdef VGGN_WITH_ONEDNN
#include <ATen/Parallel.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <chrono>
#include <map>
#include <mutex>
#include <string_view>
#include <tuple>
#endif

namespace vggn {

#ifndef VGGN_WITH_ONEDNN

OneDnnInfo oneDnnInfo() { return {}; }
std::unique_ptr<TrunkRunner> makeOneDnnTrunk(const std::string&) { return nullptr; }
std::unique_ptr<TrunkRunner> makeOneDnnInt8Trunk(const std::vector<float>&) {
  TORCH_CHECK(false, "precision 'int8' needs the oneDNN engine, and this addon was built without it (see README, Devices and precision)");
}

#else

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Dt = memory::data_type;

dnnl::engine& cpuEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// oneDNN 2 and 3 (Debian 12 packages 2.7, Debian 13 and LibTorch 2.x carry
// 3.x): version 3 dropped the operation descriptors (a primitive_desc is made
// from the engine and the operation's arguments) and the scale argument of
// post-op eltwise, and int8 scales became per-argument runtime inputs. These
// four are the only calls the engine makes that differ.
dnnl::post_ops reluPostOp() {
  dnnl::post_ops ops;
#if DNNL_VERSION_MAJOR >= 3
  ops.append_eltwise(dnnl::algorithm::eltwise_relu, 0.f, 0.f);
#else
  ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
#endif
  return ops;
}

/** Max pooling, kernel and stride 2, padded on the right/bottom by `padR` (ceil mode). */
dnnl::pooling_forward::primitive_desc maxPool2x2(const memory::desc& src, const memory::desc& dst, const memory::dims& padR,
                                                 const dnnl::primitive_attr& attr) {
#if DNNL_VERSION_MAJOR >= 3
  return {cpuEngine(), dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max, src, dst, {2, 2}, {2, 2}, {0, 0}, {0, 0}, padR,
          attr};
#else
  dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max, src, dst, {2, 2}, {2, 2}, {0, 0},
                                   padR);
  return {desc, attr, cpuEngine()};
#endif
}

/** A 3x3 convolution, stride 1, dilation `d` with "same" padding (oneDNN counts dilation from 0). */
dnnl::convolution_forward::primitive_desc convolution3x3(dnnl::algorithm alg, const memory::desc& src, const memory::desc& weights,
                                                         const memory::desc& bias, const memory::desc& dst, int64_t d,
                                                         const dnnl::primitive_attr& attr) {
#if DNNL_VERSION_MAJOR >= 3
  return {cpuEngine(), dnnl::prop_kind::forward_inference, alg, src, weights, bias, dst, {1, 1}, {d - 1, d - 1}, {d, d}, {d, d}, attr};
#else
  dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, alg, src, weights, bias, dst, {1, 1}, {d - 1, d - 1}, {d, d},
                                       {d, d});
  return {desc, attr, cpuEngine()};
#endif
}

/**
 * int8 convolution scales. The convolution computes in int32 on
 * src = x / srcScale (u8, or s8 for the image) and weights w / weightScales[oc]
 * (s8); x * w + bias in float is acc * srcScale * weightScales[oc] + bias, then
 * ReLU, then written as y / dstScale in u8 (dstScale 0: float32, unscaled).
 * oneDNN 2.x has one output scale per channel applied to acc + bias, so the
 * bias goes into the accumulator's units; 3.x takes src, weights and dst
 * scales as runtime arguments and adds a float32 bias after dequantisation.
 * Sets the attribute; returns the bias to bind, and `args`, the runtime
 * arguments to add at execution (3.x; empty in 2.x).
 */
torch::Tensor setInt8ConvScales(dnnl::primitive_attr& attr, float srcScale, const std::vector<float>& weightScales, float dstScale,
                                const torch::Tensor& bias, std::vector<std::pair<int, memory>>& args) {
  args.clear();
  const auto oc = static_cast<int64_t>(weightScales.size());
#if DNNL_VERSION_MAJOR >= 3
  auto scalar = [](const std::vector<float>& values) {
    memory m({{static_cast<int64_t>(values.size())}, Dt::f32, Tag::x}, cpuEngine());
    std::copy(values.begin(), values.end(), static_cast<float*>(m.get_data_handle()));
    return m;
  };
  attr.set_scales_mask(DNNL_ARG_SRC, 0);
  attr.set_scales_mask(DNNL_ARG_WEIGHTS, 1 << 0);  // per output channel (dimension 0 of ungrouped weights)
  args.emplace_back(DNNL_ARG_ATTR_SCALES | DNNL_ARG_SRC, scalar({srcScale}));
  args.emplace_back(DNNL_ARG_ATTR_SCALES | DNNL_ARG_WEIGHTS, scalar(weightScales));
  if (dstScale > 0) {
    attr.set_scales_mask(DNNL_ARG_DST, 0);
    args.emplace_back(DNNL_ARG_ATTR_SCALES | DNNL_ARG_DST, scalar({dstScale}));
  }
  (void)oc;
  return bias.contiguous();
#else
  std::vector<float> out(weightScales.size());
  auto accScale = torch::empty({oc}, torch::kFloat32);
  for (int64_t i = 0; i < oc; ++i) {
    float acc = srcScale * weightScales[i];
    accScale[i] = acc;
    out[i] = dstScale > 0 ? acc / dstScale : acc;
  }
  attr.set_output_scales(1 << 1, out);  // per channel of the output (dimension 1 of NCHW)
  return (bias / accScale).contiguous();
#endif
}

/** Whether oneDNN runs int8 convolutions with VNNI (avx2_vnni, avx512_core_vnni and later, AMX). */
bool nativeInt8() {
  auto isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx2_vnni || isa == dnnl::cpu_isa::avx512_core_vnni || isa == dnnl::cpu_isa::avx512_core_bf16 ||
         isa == dnnl::cpu_isa::avx512_core_amx;
}

bool nativeBf16() {
  auto isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

const char* isaName(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

/** A buffer from c10's CPU allocator (the caching one), viewed as oneDNN memory. */
struct Buffer {
  torch::Tensor storage;
  memory mem;
};

Buffer allocate(const memory::desc& md) {
  Buffer b;
  b.storage = torch::empty({static_cast<int64_t>(md.get_size())}, torch::kUInt8);
  b.mem = memory(md, cpuEngine(), b.storage.data_ptr());
  return b;
}

/** A conv layer with BN folded in, and its weights packed for each layout a primitive asked for. */
struct FoldedConv {
  torch::Tensor weight;  // [O, I, 3, 3] float32, contiguous
  torch::Tensor bias;    // [O] float32
  int64_t dilation = 1;
  // int8 only: weights rounded per output channel to s8 (scale max|w[oc]| / 127),
  // the input's and the output's scales (0: float32 output), the bias to bind
  // and the runtime scale arguments (setInt8ConvScales).
  torch::Tensor qweight;
  std::vector<float> weightScales;
  float srcScale = 0.f, dstScale = 0.f;
  torch::Tensor qbias;
  std::vector<std::pair<int, memory>> scaleArgs;
  std::vector<std::pair<memory::desc, memory>> packed;

  memory weightsFor(const memory::desc& want) {
    for (auto& p : packed)
      if (p.first == want) return p.second;
    memory dst = pack(want);
    packed.emplace_back(want, dst);
    return dst;
  }

  /** The weights reordered into `want`, not kept (owned by oneDNN while referenced). */
  memory pack(const memory::desc& want) const {
    const torch::Tensor& w = qweight.defined() ? qweight : weight;
    auto sizes = w.sizes();
    memory::desc plain({sizes[0], sizes[1], sizes[2], sizes[3]}, qweight.defined() ? Dt::s8 : Dt::f32, Tag::oihw);
    memory src(plain, cpuEngine(), w.data_ptr());
    memory dst(want, cpuEngine());  // owned by oneDNN, lives as long as the model's runner
    dnnl::stream stream(cpuEngine());
    dnnl::reorder(src, dst).execute(stream, src, dst);
    stream.wait();
    return dst;
  }
};

struct Step {
  size_t stage;
  int conv = -1;         // index into convs_, or -1 for a pool or a reorder
  bool reorder = false;  // a layout change between two kernels that want different ones
  dnnl::primitive prim;
  memory::desc dst;
  memory weights;  // packed, for a conv
  size_t scratch = 0;
};

struct Plan {
  memory::desc input;        // the caller's layout (nchw or nhwc, f32; s8 for int8, quantised by ATen)
  memory::desc firstSrc;     // what the first convolution wants
  bool inputToNhwc = false;  // firstSrc is NHWC f32 and the caller's input NCHW: ATen transposes it
  std::vector<Step> steps;
  std::vector<size_t> stageEnd;  // index of the last step of each stage
  std::vector<std::vector<int64_t>> stageDims;
  std::vector<float> stageScale;                        // int8: the scale of each stage's u8 output (0: float32)
  std::vector<std::unique_ptr<dnnl::reorder>> toDense;  // per stage, made on first use
  size_t scratch = 0;
};

/**
 * The trunk for one precision: f32, bf16, or int8 (type u8) with `inputScales`,
 * one per convolution (the calibration's): its input is x / scale in s8 for the
 * first convolution (the normalised image is signed) and in u8 after (ReLU and
 * max pooling keep it non-negative). Each int8 convolution writes u8 in the
 * next one's scale (max pooling commutes with it), the last one float32.
 */
class OneDnnTrunk final : public TrunkRunner {
 public:
  explicit OneDnnTrunk(Dt type, std::vector<float> inputScales = {}) : type_(type), inputScales_(std::move(inputScales)) {}

  std::vector<torch::Tensor> run(VggImpl& model, const torch::Tensor& x, size_t deepest, const std::vector<bool>& want) override {
    TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && x.dim() == 4,
                "oneDNN trunk: expected a CPU float32 NCHW tensor");
    bool nhwc = !x.is_contiguous() && x.is_contiguous(torch::MemoryFormat::ChannelsLast);
    torch::Tensor input = nhwc ? x : x.contiguous();
    refresh(model);
    Plan& plan = planFor(input.size(0), input.size(2), input.size(3), nhwc);
    if (int8()) {
      // The image in s8 (round half to even, as oneDNN and torch.quantize_per_tensor do), in the caller's layout.
      input = input.mul(1.f / convs_[0].srcScale).round_().clamp_(-128, 127).to(torch::kInt8);
      if (nhwc) input = input.contiguous(torch::MemoryFormat::ChannelsLast);
    }
    applyThreadSettings();  // this pool thread's OpenMP team: LibTorch's thread count (not at::init_num_threads: see runtime.cc)

    dnnl::stream stream(cpuEngine());
    Buffer scratch = allocate(memory::desc({static_cast<int64_t>(plan.scratch)}, Dt::u8, Tag::a));
    // oneDNN's reorder of a 3-channel NCHW image to NHWC ran at ~0.2 GB/s here
    // (4 ms at 224x224); ATen's channels_last copy takes a fraction of that.
    if (plan.inputToNhwc) input = input.contiguous(torch::MemoryFormat::ChannelsLast);
    memory user(plan.inputToNhwc ? plan.firstSrc : plan.input, cpuEngine(), input.data_ptr());
    Buffer cur;
    if (plan.inputToNhwc || plan.firstSrc == plan.input) {
      cur.mem = user;
    } else {
      cur = allocate(plan.firstSrc);
      dnnl::reorder(user, cur.mem).execute(stream, user, cur.mem);
    }
    std::vector<torch::Tensor> outs(deepest + 1);
    for (size_t i = 0; i < plan.steps.size(); ++i) {
      Step& step = plan.steps[i];
      if (step.stage > deepest) break;
      Buffer dst = allocate(step.dst);
      std::unordered_map<int, memory> args{{DNNL_ARG_SRC, cur.mem}, {DNNL_ARG_DST, dst.mem}};
      if (!step.reorder) args[DNNL_ARG_SCRATCHPAD] = scratch.mem;
      if (step.conv >= 0) {
        args[DNNL_ARG_WEIGHTS] = step.weights;
        FoldedConv& f = convs_[step.conv];
        torch::Tensor& bias = f.qbias.defined() ? f.qbias : f.bias;
        args[DNNL_ARG_BIAS] = memory({{bias.size(0)}, Dt::f32, Tag::x}, cpuEngine(), bias.data_ptr());
        for (auto& a : f.scaleArgs) args[a.first] = a.second;
      }
      step.prim.execute(stream, args);
      cur = std::move(dst);
      if (i == plan.stageEnd[step.stage] && (want[step.stage] || step.stage == deepest))
        outs[step.stage] = dense(plan, step.stage, cur.mem, stream);
    }
    stream.wait();
    return outs;
  }

 private:
  /** Re-folds and re-packs when a conv/BN tensor was replaced or changed in place since the last call. */
  void refresh(VggImpl& model) {
    auto layers = model.trunkLayers();
    uint64_t sig = 1469598103934665603ULL;
    auto mix = [&](const torch::Tensor& t) {
      if (!t.defined()) return;
      for (uint64_t v : {static_cast<uint64_t>(reinterpret_cast<uintptr_t>(t.data_ptr())), static_cast<uint64_t>(t._version())})
        sig = (sig ^ v) * 1099511628211ULL;
    };
    // BN's running statistics change inside the batch-norm kernel during
    // training, without a version bump: those (a few KB) are hashed by content.
    auto mixContent = [&](const torch::Tensor& t) {
      if (!t.defined()) return;
      auto c = t.contiguous();
      sig = (sig ^ std::hash<std::string_view>{}(std::string_view(static_cast<const char*>(c.data_ptr()), c.nbytes()))) * 1099511628211ULL;
    };
    for (auto& l : layers) {
      if (!l.conv) continue;
      mix(l.conv->conv->weight);
      mix(l.conv->conv->bias);
      if (l.conv->bn) {
        mix(l.conv->bn->weight);
        mix(l.conv->bn->bias);
        mixContent(l.conv->bn->running_mean);
        mixContent(l.conv->bn->running_var);
      }
    }
    bool ceil = model.config().ceilMode;
    if (sig == signature_ && ceil == ceilMode_ && !convs_.empty()) return;
    ceilMode_ = ceil;
    signature_ = sig;
    plans_.clear();
    convs_.clear();
    layers_ = layers;
    torch::NoGradGuard noGrad;
    for (auto& l : layers) {
      if (!l.conv) continue;
      FoldedConv f;
      auto w = l.conv->conv->weight.detach().to(torch::kFloat64);
      auto b = l.conv->conv->bias.defined() ? l.conv->conv->bias.detach().to(torch::kFloat64) : torch::zeros({w.size(0)}, torch::kFloat64);
      if (l.conv->bn) {
        auto& bn = l.conv->bn;
        auto scale = bn->weight.detach().to(torch::kFloat64) / (bn->running_var.detach().to(torch::kFloat64) + bn->options.eps()).sqrt();
        w = w * scale.view({-1, 1, 1, 1});
        b = (b - bn->running_mean.detach().to(torch::kFloat64)) * scale + bn->bias.detach().to(torch::kFloat64);
      }
      f.weight = w.to(torch::kFloat32).contiguous();
      f.bias = b.to(torch::kFloat32).contiguous();
      f.dilation = l.dilation;
      convs_.push_back(std::move(f));
    }
    if (int8()) quantizeWeights();
  }

  bool int8() const { return type_ == Dt::u8; }

  /**
   * int8's classifier: fc6-fc8 in bf16 on CPUs with native bf16: bf16
   * weights (converted once) and inputs, products summed in float32 and
   * rounded to bf16, the bias added in float32. In fp32 it streamed
   * VGG-16's 494 MB of weights in about a quarter of the int8 forward at
   * batch 8 (fc6: 34 ms fp32, 6 ms bf16 on a 2-core Zen 5) and 13 of 31 ms
   * at batch 1 (bf16: 10); the issue allows int8 or bf16 inner products.
   */
  torch::Tensor linear(torch::nn::LinearImpl& l, const torch::Tensor& h) override {
    if (!int8() || !nativeBf16()) return {};
    const torch::Tensor& w = l.weight;
    auto it = bf16Linears_.find(w.unsafeGetTensorImpl());
    if (it == bf16Linears_.end() || it->second.data != w.data_ptr() || it->second.version != w._version()) {
      // Entries of weights that no longer exist (a replaced head) go first; the weak reference
      // keeps their TensorImpl's address from being reused while the entry names it.
      for (auto e = bf16Linears_.begin(); e != bf16Linears_.end();) e = e->second.source.expired() ? bf16Linears_.erase(e) : std::next(e);
      Bf16Linear c{w.detach().to(torch::kBFloat16).contiguous(), WeakImpl(w.getIntrusivePtr()), w.data_ptr(), w._version()};
      it = bf16Linears_.insert_or_assign(w.unsafeGetTensorImpl(), std::move(c)).first;
    }
    auto y = torch::mm(h.to(torch::kBFloat16), it->second.weight.t()).to(torch::kFloat32);
    return l.bias.defined() ? y.add_(l.bias) : y;
  }

  /** int8: s8 weights per output channel, and each convolution's scales. */
  void quantizeWeights() {
    TORCH_CHECK(inputScales_.size() == convs_.size(), "int8: the calibration has ", inputScales_.size(), " scales and this model ",
                convs_.size(), " convolutions: quantize() it again");
    for (size_t i = 0; i < convs_.size(); ++i) {
      FoldedConv& f = convs_[i];
      auto absmax = f.weight.abs().amax({1, 2, 3});
      auto scale = torch::where(absmax > 0, absmax / 127, torch::ones_like(absmax)).contiguous();
      f.qweight = (f.weight / scale.view({-1, 1, 1, 1})).round_().clamp_(-127, 127).to(torch::kInt8).contiguous();
      f.weightScales.assign(scale.data_ptr<float>(), scale.data_ptr<float>() + scale.numel());
      f.srcScale = inputScales_[i];
      f.dstScale = i + 1 < convs_.size() ? inputScales_[i + 1] : 0.f;
    }
  }

  Plan& planFor(int64_t n, int64_t h, int64_t w, bool nhwc) {
    auto key = std::make_tuple(n, h, w, nhwc);
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second;
    Plan plan;
    const Dt inputType = int8() ? Dt::s8 : Dt::f32;
    plan.input = memory::desc({n, 3, h, w}, inputType, nhwc ? Tag::nhwc : Tag::nchw);
    memory::desc cur;
    int64_t c = 3;
    size_t convIndex = 0;
    plan.stageEnd.assign(5, 0);
    plan.stageDims.assign(5, {});
    plan.stageScale.assign(5, 0.f);
    float curScale = 0.f;  // int8: the scale of the u8 activation `cur`
    Dt curType = type_;
    for (auto& l : layers_) {
      Step step;
      step.stage = l.stage;
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      if (l.conv) {
        FoldedConv& f = convs_[convIndex];
        int64_t o = f.weight.size(0), d = f.dilation;
        attr.set_post_ops(reluPostOp());
        Dt srcType = type_, dstType = type_;
        if (int8()) {
          srcType = convIndex == 0 ? Dt::s8 : Dt::u8;
          dstType = f.dstScale > 0 ? Dt::u8 : Dt::f32;
          f.qbias = setInt8ConvScales(attr, f.srcScale, f.weightScales, f.dstScale, f.bias, f.scaleArgs);
          curScale = f.dstScale;
        }
        curType = dstType;
        auto pd = fastestConvolution(f, {n, c, h, w}, o, d, attr, srcType, dstType);
        if (!cur) {
          plan.firstSrc = pd.src_desc();
          plan.inputToNhwc = !nhwc && pd.src_desc() == memory::desc({n, 3, h, w}, inputType, Tag::nhwc);
        } else if (pd.src_desc() != cur) {
          Step change;
          change.stage = l.stage;
          change.reorder = true;
          change.dst = pd.src_desc();
          change.prim = dnnl::reorder(dnnl::reorder::primitive_desc(cpuEngine(), cur, cpuEngine(), change.dst));
          plan.steps.push_back(std::move(change));
        }
        step.conv = static_cast<int>(convIndex++);
        step.prim = dnnl::convolution_forward(pd);
        step.dst = pd.dst_desc();
        step.weights = f.weightsFor(pd.weights_desc());
        step.scratch = pd.scratchpad_desc().get_size();
        c = o;
      } else {
        bool ceil = ceilMode_;
        int64_t oh = ceil ? (h - 1) / 2 + 1 : h / 2, ow = ceil ? (w - 1) / 2 + 1 : w / 2;
        TORCH_CHECK(oh > 0 && ow > 0, "input too small for stage ", l.stage + 1);
        memory::desc dst({n, c, oh, ow}, curType, Tag::any);
        auto pd = maxPool2x2(cur, dst, {(oh - 1) * 2 + 2 - h, (ow - 1) * 2 + 2 - w}, attr);
        step.prim = dnnl::pooling_forward(pd);
        step.dst = pd.dst_desc();
        step.scratch = pd.scratchpad_desc().get_size();
        h = oh;
        w = ow;
      }
      cur = step.dst;
      plan.scratch = std::max(plan.scratch, step.scratch);
      plan.stageEnd[l.stage] = plan.steps.size();
      plan.stageDims[l.stage] = {n, c, h, w};
      plan.stageScale[l.stage] = curType == Dt::u8 ? curScale : 0.f;
      plan.steps.push_back(std::move(step));
    }
    plan.scratch = std::max<size_t>(plan.scratch, 64);
    plan.toDense.resize(5);
    return plans_.emplace(key, std::move(plan)).first->second;
  }

  /**
   * The convolution primitive for one layer, chosen by measurement among the
   * algorithms oneDNN has for it, each with the activation layout it prefers
   * (a reorder is inserted where neighbours disagree). fp32 candidates:
   * Winograd F(4x4, 3x3) or F(2x2, 3x3) (avx512_core, undilated 3x3; about
   * half the multiplies of a direct convolution: measured 2.0x faster on
   * VGG-16 batch 8, with logits within 2e-6 (max |diff| / max |logit|) of the
   * direct path on VGG-11/16-BN/19; the tests hold every variant to 1e-5 of
   * PyTorch) and direct (brgconv), which wins on the 3-channel first layer
   * (0.6 ms against 2.0 ms at 224x224, batch 1) and on some 14x14 layers.
   * oneDNN's "auto" never picks Winograd. bf16: direct. Each choice is timed
   * once per process for a layer shape (1 warm-up, best of 2 runs each) and
   * remembered. The convAlgo setting (VGG_NATIVE_CONV_ALGO=direct or
   * =winograd) forces one. int8 (u8/s8 src, s8 weights): direct.
   */
  dnnl::convolution_forward::primitive_desc fastestConvolution(const FoldedConv& f, const memory::dims& srcDims, int64_t o, int64_t d,
                                                               const dnnl::primitive_attr& attr, Dt srcType, Dt dstType) {
    memory::desc src(srcDims, srcType, Tag::any);
    memory::desc dst({srcDims[0], o, srcDims[2], srcDims[3]}, dstType, Tag::any);
    memory::desc wmd({o, srcDims[1], 3, 3}, int8() ? Dt::s8 : type_, Tag::any);
    memory::desc bmd({o}, Dt::f32, Tag::x);
    std::vector<dnnl::convolution_forward::primitive_desc> candidates;
    auto add = [&](dnnl::algorithm alg) {
      try {
        candidates.push_back(convolution3x3(alg, src, wmd, bmd, dst, d, attr));
      } catch (const dnnl::error&) {
        // no kernel for this algorithm, shape or CPU
      }
    };
    const ConvAlgo forced = convAlgoSetting();
    if (type_ == Dt::f32 && d == 1 && forced != ConvAlgo::kDirect) add(dnnl::algorithm::convolution_winograd);
    if (candidates.empty() || forced != ConvAlgo::kWinograd) add(dnnl::algorithm::convolution_direct);
    TORCH_CHECK(!candidates.empty(), "oneDNN has no convolution for ", srcDims[1], " -> ", o, " channels");
    if (candidates.size() == 1) return candidates[0];

    static std::mutex mutex;
    static std::map<std::vector<int64_t>, size_t> chosen;  // by layer shape and type, for every model of the process
    // The setting is in the key: the index chosen points into this candidate list.
    std::vector<int64_t> key{
        srcDims[0], srcDims[1], srcDims[2], srcDims[3], o, d, static_cast<int64_t>(type_), static_cast<int64_t>(forced)};
    std::lock_guard<std::mutex> lock(mutex);
    auto it = chosen.find(key);
    if (it == chosen.end()) {
      size_t best = 0;
      double bestSeconds = 1e30;
      for (size_t i = 0; i < candidates.size(); ++i) {
        double seconds = timeConvolution(f, candidates[i]);
        if (seconds < bestSeconds) {
          bestSeconds = seconds;
          best = i;
        }
      }
      it = chosen.emplace(key, best).first;
    }
    return candidates[it->second];
  }

  /** Seconds one run of a convolution primitive takes: best of 2 after a warm-up, on zeroed buffers. */
  static double timeConvolution(const FoldedConv& f, const dnnl::convolution_forward::primitive_desc& pd) {
    Buffer src = allocate(pd.src_desc()), dst = allocate(pd.dst_desc()), scratch = allocate(pd.scratchpad_desc());
    src.storage.zero_();
    memory weights = f.pack(pd.weights_desc());
    memory bias({{f.bias.size(0)}, Dt::f32, Tag::x}, cpuEngine(), f.bias.data_ptr());
    dnnl::convolution_forward prim(pd);
    dnnl::stream stream(cpuEngine());
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src.mem},
                                         {DNNL_ARG_DST, dst.mem},
                                         {DNNL_ARG_WEIGHTS, weights},
                                         {DNNL_ARG_BIAS, bias},
                                         {DNNL_ARG_SCRATCHPAD, scratch.mem}};
    double best = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      prim.execute(stream, args);
      stream.wait();
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (rep > 0) best = std::min(best, seconds);
    }
    return best;
  }

  /** One stage's output as a dense NCHW float32 tensor (a reorder, with bf16 -> f32 where needed; u8 is dequantised). */
  torch::Tensor dense(Plan& plan, size_t stage, memory& from, dnnl::stream& stream) {
    const auto& d = plan.stageDims[stage];
    auto out = torch::empty({d[0], d[1], d[2], d[3]}, torch::kFloat32);
    memory::desc md({d[0], d[1], d[2], d[3]}, Dt::f32, Tag::nchw);
    memory to(md, cpuEngine(), out.data_ptr());
    if (!plan.toDense[stage]) plan.toDense[stage] = std::make_unique<dnnl::reorder>(from, to);
    plan.toDense[stage]->execute(stream, from, to);
    if (plan.stageScale[stage] > 0) {
      stream.wait();
      out.mul_(plan.stageScale[stage]);
    }
    return out;
  }

  Dt type_;
  std::vector<float> inputScales_;  // int8: per convolution
  uint64_t signature_ = 0;
  bool ceilMode_ = false;
  std::vector<TrunkLayer> layers_;
  std::vector<FoldedConv> convs_;
  std::map<std::tuple<int64_t, int64_t, int64_t, bool>, Plan> plans_;
  // int8: the classifier's weights in bf16, by the fp32 weight they were made from (its
  // TensorImpl, held weakly), with that weight's storage and version at the time.
  using WeakImpl = c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;
  struct Bf16Linear {
    torch::Tensor weight;
    WeakImpl source;
    const void* data;
    uint32_t version;
  };
  std::map<const c10::TensorImpl*, Bf16Linear> bf16Linears_;
};

}  // namespace

OneDnnInfo oneDnnInfo() {
  OneDnnInfo info;
  info.built = true;
  const dnnl_version_t* v = dnnl::version();
  info.version = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  info.isa = isaName(dnnl::get_effective_cpu_isa());
  info.bf16 = nativeBf16();
  info.int8 = nativeInt8();
  return info;
}

std::unique_ptr<TrunkRunner> makeOneDnnTrunk(const std::string& precision) {
  if (precision == "bf16") {
    if (!nativeBf16()) return nullptr;  // LibTorch's autocast path instead (see README, precision)
    return std::make_unique<OneDnnTrunk>(Dt::bf16);
  }
  if (precision == "fp32") return std::make_unique<OneDnnTrunk>(Dt::f32);
  return nullptr;
}

std::unique_ptr<TrunkRunner> makeOneDnnInt8Trunk(const std::vector<float>& inputScales) {
  TORCH_CHECK(nativeInt8(), "precision 'int8' needs a CPU with VNNI (avx512_core_vnni, avx2_vnni) or AMX; oneDNN reports ",
              isaName(dnnl::get_effective_cpu_isa()), " here");
  return std::make_unique<OneDnnTrunk>(Dt::u8, inputScales);
}

#endif

}  // namespace vggn
