// The reference backend (llm/reference_backend.h): every op is one call of its kernels/cpu
// reference.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "kernels/attention.h"
#include "kernels/get_rows.h"
#include "kernels/matvec.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "llm/host_backend.h"
#include "llm/reference_backend.h"

namespace podworker::llm {

namespace {

class ReferenceBackend final : public HostBackend {
 public:
  ReferenceBackend(std::shared_ptr<const LlamaWeights> weights, const BackendOptions& options)
      : HostBackend(weights->config(), options), weights_(std::move(weights)) {
    shape_.n_q_heads = config_.n_head;
    shape_.n_kv_heads = config_.n_head_kv;
    shape_.head_dim = config_.head_dim;
    shape_.max_ctx = max_context();
    shape_.n_slots = max_sequences();
    k_cache_.resize(static_cast<std::size_t>(config_.n_layer));
    v_cache_.resize(static_cast<std::size_t>(config_.n_layer));
  }

  std::string_view name() const override { return "reference"; }

 private:
  // The caches grow to the highest slot in use ([slot][max_ctx][kv_dim] per layer, the layout of
  // kernels/attention.h), so a small test never allocates max_sequences full contexts.
  void prepare_batch() override {
    const SeqId top = *std::max_element(batch().seqs.begin(), batch().seqs.end());
    const std::size_t need = static_cast<std::size_t>(top + 1) *
                             static_cast<std::size_t>(shape_.max_ctx) *
                             static_cast<std::size_t>(shape_.kv_dim());
    for (int l = 0; l < config_.n_layer; ++l) {
      if (k_cache_[static_cast<std::size_t>(l)].size() < need) {
        k_cache_[static_cast<std::size_t>(l)].resize(need);
        v_cache_[static_cast<std::size_t>(l)].resize(need);
      }
    }
    lens_.resize(batch().pos.size());
    for (std::size_t i = 0; i < lens_.size(); ++i) lens_[i] = batch().pos[i] + 1;
  }

  int width(Act a) const {
    switch (a) {
      case Act::x:
      case Act::xn:
      case Act::att:
      case Act::out_x:
        return config_.n_embd;
      case Act::qkv:
        return config_.n_embd + 2 * config_.kv_dim();
      case Act::gate_up:
        return 2 * config_.n_ff;
      case Act::ffn:
        return config_.n_ff;
      case Act::logits:
        return config_.n_vocab;
    }
    return 0;
  }

  float* buffer(Act a, int rows) {
    if (a == Act::logits) return batch().logits;
    std::vector<float>& b = acts_[static_cast<std::size_t>(a)];
    b.resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(width(a)));
    return b.data();
  }

  static void matvec(const TensorView& w, const float* x, float* y, int rows, bool accumulate) {
    kernels::cpu::matvec(w.type, w.data, w.rows, w.cols, x, y, rows, accumulate);
  }

  // y's columns [at, at + w.rows) of each row (of y_width floats) = w x.
  void matvec_into(const TensorView& w, const float* x, float* y, int y_width, int at, int rows) {
    tmp_.resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(w.rows));
    matvec(w, x, tmp_.data(), rows, false);
    for (int r = 0; r < rows; ++r) {
      std::copy_n(tmp_.data() + static_cast<std::size_t>(r) * static_cast<std::size_t>(w.rows),
                  w.rows,
                  y + static_cast<std::size_t>(r) * static_cast<std::size_t>(y_width) +
                      static_cast<std::size_t>(at));
    }
  }

  void embed(Act out, int rows) override {
    const TensorView& e = weights_->token_embd();
    kernels::cpu::get_rows(e.type, e.data, e.rows, e.cols, batch().tokens.data(), rows,
                           buffer(out, rows));
  }

  void rmsnorm(Act in, int layer, Norm norm, Act out, int rows) override {
    const TensorView& g = norm == Norm::output ? weights_->output_norm()
                          : norm == Norm::attn
                              ? weights_->layers()[static_cast<std::size_t>(layer)].attn_norm
                              : weights_->layers()[static_cast<std::size_t>(layer)].ffn_norm;
    if (g.type != kernels::GgmlType::f32)
      throw ModelError("reference backend: norm " + g.name + " must be F32");
    kernels::cpu::rmsnorm(buffer(in, rows), reinterpret_cast<const float*>(g.data),
                          buffer(out, rows), rows, config_.n_embd, config_.rms_eps);
  }

  void project(int layer, Proj p, Act in, Act out, int rows, bool accumulate) override {
    const LayerWeights& w = weights_->layers()[static_cast<std::size_t>(layer)];
    const float* x = buffer(in, rows);
    float* y = buffer(out, rows);
    switch (p) {
      case Proj::qkv: {
        const int width = this->width(Act::qkv);
        matvec_into(w.wq, x, y, width, 0, rows);
        matvec_into(w.wk, x, y, width, config_.n_embd, rows);
        matvec_into(w.wv, x, y, width, config_.n_embd + config_.kv_dim(), rows);
        return;
      }
      case Proj::gate_up:
        matvec_into(w.w_gate, x, y, 2 * config_.n_ff, 0, rows);
        matvec_into(w.w_up, x, y, 2 * config_.n_ff, config_.n_ff, rows);
        return;
      case Proj::wo:
        matvec(w.wo, x, y, rows, accumulate);
        return;
      case Proj::down:
        matvec(w.w_down, x, y, rows, accumulate);
        return;
    }
  }

  void rope_store(int layer, Act qkv, int rows) override {
    kernels::cpu::rope_store(
        buffer(qkv, rows), width(Act::qkv), rows, shape_, config_.rope_freq_base,
        k_cache_[static_cast<std::size_t>(layer)].data(),
        v_cache_[static_cast<std::size_t>(layer)].data(), batch().seqs.data(), batch().pos.data());
  }

  void attention(int layer, Act qkv, Act out, int rows) override {
    kernels::cpu::attention_decode(
        buffer(qkv, rows), width(Act::qkv), k_cache_[static_cast<std::size_t>(layer)].data(),
        v_cache_[static_cast<std::size_t>(layer)].data(), buffer(out, rows), rows, shape_,
        batch().seqs.data(), lens_.data(),
        static_cast<float>(1.0 / std::sqrt(static_cast<double>(config_.head_dim))));
  }

  void swiglu(Act gate_up, Act out, int rows) override {
    kernels::cpu::swiglu_rows(buffer(gate_up, rows), rows, config_.n_ff, buffer(out, rows));
  }

  void select_output_rows(Act in, Act out, int out_rows) override {
    const std::size_t d = static_cast<std::size_t>(config_.n_embd);
    const float* x = acts_[static_cast<std::size_t>(in)].data();
    float* o = buffer(out, out_rows);
    for (int r = 0; r < out_rows; ++r) {
      std::copy_n(x + static_cast<std::size_t>(batch().out_rows[static_cast<std::size_t>(r)]) * d,
                  d, o + static_cast<std::size_t>(r) * d);
    }
  }

  void output_logits(Act in, Act out, int out_rows) override {
    matvec(weights_->output(), buffer(in, out_rows), buffer(out, out_rows), out_rows, false);
  }

  std::shared_ptr<const LlamaWeights> weights_;
  kernels::AttentionShape shape_;
  std::vector<std::vector<float>> k_cache_, v_cache_;
  std::vector<int> lens_;
  std::vector<float> acts_[static_cast<std::size_t>(Act::logits) + 1];
  std::vector<float> tmp_;
};

}  // namespace

std::unique_ptr<Backend> make_reference_backend(std::shared_ptr<const LlamaWeights> weights,
                                                const BackendOptions& options) {
  if (!weights) throw std::invalid_argument("make_reference_backend: no weights");
  return std::make_unique<ReferenceBackend>(std::move(weights), options);
}

}  // namespace podworker::llm
