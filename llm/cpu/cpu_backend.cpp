// The fast CPU backend: the ops of llm/forward.h, whose graph it runs. A batch is N tokens, each with
// its sequence and position — prefill is N consecutive positions of one sequence, decode is one
// position of N sequences. Every matrix is multiplied once per batch (rows split across threads,
// each weight row reused for all N activation columns), so concurrent streams share one pass
// over the weights. Ops without a faster form here (RMSNorm, RoPE, SwiGLU, get_rows) call their
// kernels/cpu reference directly.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kernels/add.h"
#include "kernels/get_rows.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "llm/cpu/matmul.h"
#include "llm/cpu/matmul_kquant.h"
#include "llm/cpu/resident_weights.h"
#include "llm/cpu/thread_pool.h"
#include "llm/cpu_backend.h"
#include "llm/host_backend.h"
#include "podworker/log.h"

namespace podworker::llm {

namespace {

using kernels::GgmlType;
using cpu::ActBlock;

// One matrix product of a parallel step: out[c][r] = w[r] · x[c] for all rows and N columns.
struct MatJob {
  const TensorView* w = nullptr;
  const ActBlock* acts = nullptr;  // quantized x (quantized types)
  const float* x = nullptr;        // x itself (F32/F16 weights), row stride = w->cols
  float* out = nullptr;
  std::size_t out_stride = 0;
};

// One sequence's KV cache: per layer [position][kv_dim], grown as the sequence grows, so an idle slot
// costs nothing.
struct SequenceCache {
  std::vector<std::vector<float>> k, v;
};

class CpuBackend final : public HostBackend {
 public:
  CpuBackend(std::shared_ptr<const LlamaWeights> weights, const BackendOptions& options)
      : HostBackend(weights->config(), options),
        weights_(std::move(weights)),
        resident_(*weights_),
        kernels_(cpu::best_kernels()),
        pool_(options.threads > 0 ? options.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()))) {
    if (config_.n_embd % 32 != 0 || config_.n_ff % 32 != 0) {
      throw ModelError("CPU backend needs hidden and FFN sizes that are multiples of 32: " + config_.describe());
    }
    caches_.resize(static_cast<std::size_t>(max_sequences()));
    for (SequenceCache& s : caches_) {
      s.k.resize(static_cast<std::size_t>(config_.n_layer));
      s.v.resize(static_cast<std::size_t>(config_.n_layer));
    }
    qkv_dim_ = config_.n_embd + 2 * config_.kv_dim();
    const std::string where = resident_.copied() ? std::to_string(resident_.bytes() >> 20) + " MiB of weights copied, "
                                                 : std::string("weights read from the file mapping, ");
    log::info(std::string("llm: CPU backend, ") + std::to_string(pool_.size()) + " thread(s), " + kernels_.name +
              " kernels, " + where + config_.describe());
  }

  std::string_view name() const override { return "cpu"; }

 private:
  void release_sequence(SeqId seq) override {
    // Keep the cache capacity for the next request in this slot.
    for (auto& k : caches_[static_cast<std::size_t>(seq)].k) k.clear();
    for (auto& v : caches_[static_cast<std::size_t>(seq)].v) v.clear();
  }

  // Cache space for the new positions; sizes only grow here, before threads read the caches.
  void prepare_batch() override {
    const Batch& b = batch();
    const std::size_t kvd = static_cast<std::size_t>(config_.kv_dim());
    for (std::size_t i = 0; i < b.tokens.size(); ++i) {
      SequenceCache& s = caches_[static_cast<std::size_t>(b.seqs[i])];
      const std::size_t need = static_cast<std::size_t>(b.pos[i] + 1) * kvd;
      for (int l = 0; l < config_.n_layer; ++l) {
        if (s.k[static_cast<std::size_t>(l)].size() < need) {
          s.k[static_cast<std::size_t>(l)].resize(need);
          s.v[static_cast<std::size_t>(l)].resize(need);
        }
      }
    }
  }

  // Row widths: Q, K and V share a row (so one RoPE call turns q and k), as do gate and up.
  int width(Act a) const {
    switch (a) {
      case Act::x:
      case Act::xn:
      case Act::att:
      case Act::out_x: return config_.n_embd;
      case Act::qkv: return qkv_dim_;
      case Act::gate_up: return 2 * config_.n_ff;
      case Act::ffn: return config_.n_ff;
      case Act::logits: return config_.n_vocab;
    }
    return 0;
  }

  float* buffer(Act a, int rows) {
    if (a == Act::logits) return batch().logits;
    std::vector<float>& b = acts_[static_cast<std::size_t>(a)];
    const std::size_t need = static_cast<std::size_t>(rows) * static_cast<std::size_t>(width(a));
    if (b.size() < need) b.resize(need);
    return b.data();
  }

  // Runs the matrix products of `jobs` in one parallel step. The work units are chunks of rows of
  // the jobs laid end to end; WorkSplit gives each thread a contiguous share of them.
  void matmuls(std::span<const MatJob> jobs, int ncols) {
    // Chunk size: 16 rows is one cache line of outputs per column (no two threads write one line
    // at batch 1) and small enough that a thread's early finish leaves little for the other.
    const int chunk = ncols >= 8 ? 4 : 16;
    int starts[5] = {0, 0, 0, 0, 0};
    const int count = static_cast<int>(jobs.size());
    for (int i = 0; i < count; ++i) {
      starts[i + 1] = starts[i] + static_cast<int>((jobs[static_cast<std::size_t>(i)].w->rows + chunk - 1) / chunk);
    }
    const int total = starts[count];
    auto unit = [&](int c) {
      int job = 0;
      while (c >= starts[job + 1]) ++job;
      const MatJob& j = jobs[static_cast<std::size_t>(job)];
      const int r0 = (c - starts[job]) * chunk;
      const int r1 = std::min<int>(r0 + chunk, static_cast<int>(j.w->rows));
      run_rows(j, r0, r1, ncols);
    };
    if (pool_.size() == 1) {
      for (int c = 0; c < total; ++c) unit(c);
      return;
    }
    split_.reset(total);
    auto body = [&](int tid) { split_.run(tid, unit); };
    pool_.run(body);
  }

  void run_rows(const MatJob& j, int r0, int r1, int ncols) const {
    const TensorView& w = *j.w;
    const int nblocks = static_cast<int>(w.cols / 32);
    switch (w.type) {
      case GgmlType::q4_0: kernels_.q4_0(w.data, w.row_bytes(), nblocks, r0, r1, j.acts, ncols, j.out, j.out_stride); return;
      case GgmlType::q4_1: kernels_.q4_1(w.data, w.row_bytes(), nblocks, r0, r1, j.acts, ncols, j.out, j.out_stride); return;
      case GgmlType::q8_0: kernels_.q8_0(w.data, w.row_bytes(), nblocks, r0, r1, j.acts, ncols, j.out, j.out_stride); return;
      case GgmlType::q5_0:
      case GgmlType::q4_k:
      case GgmlType::q5_k:
      case GgmlType::q6_k: cpu::matmul_kquant(w.type, w.data, w.row_bytes(), nblocks, r0, r1, j.acts, ncols, j.out, j.out_stride); return;
      case GgmlType::f32:
      case GgmlType::f16: {
        // Unquantized weights (generated test models): plain f32 products.
        std::vector<float> row(static_cast<std::size_t>(w.cols));
        for (int r = r0; r < r1; ++r) {
          dequantize_row(w, r, row.data());
          for (int c = 0; c < ncols; ++c) {
            const float* x = j.x + static_cast<std::size_t>(c) * static_cast<std::size_t>(w.cols);
            float sum = 0;
            for (std::int64_t e = 0; e < w.cols; ++e) sum += row[static_cast<std::size_t>(e)] * x[e];
            j.out[static_cast<std::size_t>(c) * j.out_stride + static_cast<std::size_t>(r)] = sum;
          }
        }
        return;
      }
      default: throw ModelError("CPU backend: unsupported weight type for " + w.name);
    }
  }

  // acts[i] = quantize(x[i]) for each of n rows of `width` floats.
  void quantize_rows(const float* x, int n, int width) {
    const std::size_t per = static_cast<std::size_t>(width / 32);
    if (acts_q_.size() < per * static_cast<std::size_t>(n)) acts_q_.resize(per * static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) kernels_.quantize(x + static_cast<std::size_t>(i) * static_cast<std::size_t>(width),
                                                   acts_q_.data() + per * static_cast<std::size_t>(i), width);
  }

  template <class F>
  void parallel_for(int n, F&& f) {
    if (n == 1 || pool_.size() == 1) {
      for (int i = 0; i < n; ++i) f(i);
      return;
    }
    split_.reset(n);
    auto body = [&](int tid) { split_.run(tid, f); };
    pool_.run(body);
  }

  // The ops (llm/forward.h).
  void embed(Act out, int rows) override {
    const TensorView& e = weights_->token_embd();
    kernels::cpu::get_rows(e.type, e.data, e.rows, e.cols, batch().tokens.data(), rows, buffer(out, rows));
  }

  void rmsnorm(Act in, int layer, Norm norm, Act out, int rows) override {
    const TensorView& g = norm == Norm::output ? weights_->output_norm()
                          : norm == Norm::attn ? weights_->layers()[static_cast<std::size_t>(layer)].attn_norm
                                               : weights_->layers()[static_cast<std::size_t>(layer)].ffn_norm;
    kernels::cpu::rmsnorm(buffer(in, rows), reinterpret_cast<const float*>(g.data), buffer(out, rows), rows,
                          config_.n_embd, config_.rms_eps);
  }

  // The fused op of this backend: activations quantized to 8 bits per 32 (kernels::cpu::
  // round_to_q8_blocks is its reference), then integer dot products. With `accumulate` the product
  // goes to a scratch row and is added to `out` (the residual add).
  void project(int layer, Proj p, Act in, Act out, int rows, bool accumulate) override {
    const LayerWeights& w = resident_.layers()[static_cast<std::size_t>(layer)];
    const float* x = buffer(in, rows);
    float* y = buffer(out, rows);
    quantize_rows(x, rows, width(in));
    if (accumulate) {
      const TensorView& t = p == Proj::wo ? w.wo : w.w_down;
      const std::size_t n = static_cast<std::size_t>(rows) * static_cast<std::size_t>(width(out));
      if (sum_.size() < n) sum_.resize(n);
      const MatJob jobs[] = {{&t, acts_q_.data(), x, sum_.data(), static_cast<std::size_t>(width(out))}};
      matmuls(jobs, rows);
      kernels::cpu::add(y, sum_.data(), y, static_cast<std::int64_t>(n));
      return;
    }
    const auto job = [&](const TensorView& t, int at, Act o) {
      return MatJob{&t, acts_q_.data(), x, y + at, static_cast<std::size_t>(width(o))};
    };
    switch (p) {
      case Proj::qkv: {
        const MatJob jobs[] = {job(w.wq, 0, out), job(w.wk, config_.n_embd, out),
                               job(w.wv, config_.n_embd + config_.kv_dim(), out)};
        return matmuls(jobs, rows);
      }
      case Proj::gate_up: {
        const MatJob jobs[] = {job(w.w_gate, 0, out), job(w.w_up, config_.n_ff, out)};
        return matmuls(jobs, rows);
      }
      case Proj::wo: {
        const MatJob jobs[] = {job(w.wo, 0, out)};
        return matmuls(jobs, rows);
      }
      case Proj::down: {
        const MatJob jobs[] = {job(w.w_down, 0, out)};
        return matmuls(jobs, rows);
      }
    }
  }

  void rope_store(int layer, Act qkv, int rows) override {
    float* b = buffer(qkv, rows);
    const std::size_t kvd = static_cast<std::size_t>(config_.kv_dim());
    // k follows q in the row: one rotation turns both (kernels::cpu::rope, the reference itself).
    kernels::cpu::rope(b, rows, config_.n_head + config_.n_head_kv, config_.head_dim, qkv_dim_, batch().pos.data(),
                       config_.rope_freq_base);
    for (int i = 0; i < rows; ++i) {
      const float* row = b + static_cast<std::size_t>(i) * static_cast<std::size_t>(qkv_dim_);
      SequenceCache& s = caches_[static_cast<std::size_t>(batch().seqs[static_cast<std::size_t>(i)])];
      const std::size_t at = static_cast<std::size_t>(batch().pos[static_cast<std::size_t>(i)]) * kvd;
      std::memcpy(s.k[static_cast<std::size_t>(layer)].data() + at, row + config_.n_embd, sizeof(float) * kvd);
      std::memcpy(s.v[static_cast<std::size_t>(layer)].data() + at, row + config_.n_embd + kvd, sizeof(float) * kvd);
    }
  }

  void attention(int layer, Act qkv, Act out, int rows) override {
    const LlamaConfig& c = config_;
    const float* b = buffer(qkv, rows);
    float* o = buffer(out, rows);
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    const int group = c.group_size(), hd = c.head_dim;
    const std::size_t kvd = static_cast<std::size_t>(c.kv_dim());
    parallel_for(rows * c.n_head, [&](int item) {
      const int i = item / c.n_head, h = item % c.n_head, g = h / group;
      const SequenceCache& s = caches_[static_cast<std::size_t>(batch().seqs[static_cast<std::size_t>(i)])];
      const int len = batch().pos[static_cast<std::size_t>(i)] + 1;
      const float* q = b + static_cast<std::size_t>(i) * static_cast<std::size_t>(qkv_dim_) + static_cast<std::size_t>(h) * hd;
      const float* kc = s.k[static_cast<std::size_t>(layer)].data() + static_cast<std::size_t>(g) * hd;
      const float* vc = s.v[static_cast<std::size_t>(layer)].data() + static_cast<std::size_t>(g) * hd;
      thread_local std::vector<float> scores;
      scores.resize(static_cast<std::size_t>(len));
      kernels_.attend(q, kc, vc, len, kvd, hd, scale, scores.data(),
                      o + static_cast<std::size_t>(i) * static_cast<std::size_t>(c.n_embd) + static_cast<std::size_t>(h) * hd);
    });
  }

  void swiglu(Act gate_up, Act out, int rows) override {
    kernels::cpu::swiglu_rows(buffer(gate_up, rows), rows, config_.n_ff, buffer(out, rows));
  }

  void select_output_rows(Act in, Act out, int out_rows) override {
    const std::size_t d = static_cast<std::size_t>(config_.n_embd);
    const float* x = acts_[static_cast<std::size_t>(in)].data();
    float* o = buffer(out, out_rows);
    for (int r = 0; r < out_rows; ++r) {
      std::memcpy(o + static_cast<std::size_t>(r) * d,
                  x + static_cast<std::size_t>(batch().out_rows[static_cast<std::size_t>(r)]) * d, sizeof(float) * d);
    }
  }

  void output_logits(Act in, Act out, int out_rows) override {
    const float* x = buffer(in, out_rows);
    quantize_rows(x, out_rows, config_.n_embd);
    const MatJob jobs[] = {{&resident_.output(), acts_q_.data(), x, buffer(out, out_rows),
                            static_cast<std::size_t>(config_.n_vocab)}};
    matmuls(jobs, out_rows);
  }

  std::shared_ptr<const LlamaWeights> weights_;
  cpu::ResidentWeights resident_;  // the matrices the products read (after weights_: it copies them)
  cpu::CpuKernels kernels_;
  cpu::ThreadPool pool_;
  cpu::WorkSplit split_{pool_.size()};
  int qkv_dim_ = 0;
  std::vector<SequenceCache> caches_;
  // Activations, [rows][width(act)] each, and the 8-bit copy of a projection's input.
  std::vector<float> acts_[static_cast<std::size_t>(Act::logits) + 1];
  std::vector<ActBlock> acts_q_;
  std::vector<float> sum_;  // a projection's output before the residual add
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(std::shared_ptr<const LlamaWeights> weights, const BackendOptions& options) {
  if (!weights) throw std::invalid_argument("make_cpu_backend: no weights");
  return std::make_unique<CpuBackend>(std::move(weights), options);
}

}  // namespace podworker::llm
