// The CPU forward pass. One code path serves prefill and decode: a batch is N tokens, each with its
// sequence and position — prefill is N consecutive positions of one sequence, decode is one
// position of N sequences. Every matrix is multiplied once per batch (rows split across threads,
// each weight row reused for all N activation columns), so concurrent streams share one pass
// over the weights.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kernels/half.h"
#include "llm/cpu/matmul.h"
#include "llm/cpu/matmul_kquant.h"
#include "llm/cpu/thread_pool.h"
#include "llm/cpu_backend.h"
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

struct Sequence {
  bool used = false;
  int length = 0;
  std::vector<std::vector<float>> k, v;  // per layer: [position][kv_dim]
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(std::shared_ptr<const LlamaWeights> weights, const BackendOptions& options)
      : weights_(std::move(weights)),
        config_(weights_->config()),
        kernels_(cpu::best_kernels()),
        pool_(options.threads > 0 ? options.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()))) {
    max_sequences_ = std::max(1, options.max_sequences);
    max_context_ = options.max_context > 0 ? options.max_context : std::min(config_.n_ctx_train, 2048);
    if (config_.n_embd % 32 != 0 || config_.n_ff % 32 != 0) {
      throw ModelError("CPU backend needs hidden and FFN sizes that are multiples of 32: " + config_.describe());
    }
    sequences_.resize(static_cast<std::size_t>(max_sequences_));
    inv_freq_.resize(static_cast<std::size_t>(config_.head_dim / 2));
    for (int j = 0; j < config_.head_dim / 2; ++j) {
      // In double, as the reference: at positions in the thousands a float angle is off by
      // several ulps of pi, which rotates long-context keys and queries measurably.
      inv_freq_[static_cast<std::size_t>(j)] =
          std::pow(static_cast<double>(config_.rope_freq_base), -2.0 * j / static_cast<double>(config_.head_dim));
    }
    log::info(std::string("llm: CPU backend, ") + std::to_string(pool_.size()) + " thread(s), " + kernels_.name +
              " kernels, " + config_.describe());
  }

  std::string_view name() const override { return "cpu"; }
  const LlamaConfig& config() const override { return config_; }
  int max_sequences() const override { return max_sequences_; }
  int max_context() const override { return max_context_; }

  SeqId alloc_sequence() override {
    for (std::size_t i = 0; i < sequences_.size(); ++i) {
      if (!sequences_[i].used) {
        Sequence& s = sequences_[i];
        s.used = true;
        s.length = 0;
        s.k.resize(static_cast<std::size_t>(config_.n_layer));
        s.v.resize(static_cast<std::size_t>(config_.n_layer));
        return static_cast<SeqId>(i);
      }
    }
    return -1;
  }

  void free_sequence(SeqId seq) override {
    if (seq < 0 || seq >= max_sequences_) return;
    Sequence& s = sequences_[static_cast<std::size_t>(seq)];
    s.used = false;
    s.length = 0;
    // Keep the cache capacity for the next request in this slot unless it grew unusually long.
    for (auto& k : s.k) k.clear();
    for (auto& v : s.v) v.clear();
  }

  int sequence_length(SeqId seq) const override { return slot(seq).length; }

  void prefill(SeqId seq, std::span<const std::int32_t> tokens, std::span<float> logits_last) override {
    if (tokens.empty()) throw std::invalid_argument("prefill: no tokens");
    Sequence& s = slot(seq);
    if (s.length + static_cast<int>(tokens.size()) > max_context_) {
      throw std::invalid_argument("prefill: " + std::to_string(s.length + tokens.size()) +
                                  " tokens exceed the context of " + std::to_string(max_context_));
    }
    if (!logits_last.empty() && logits_last.size() != static_cast<std::size_t>(config_.n_vocab)) {
      throw std::invalid_argument("prefill: logits buffer must hold n_vocab floats");
    }
    const std::size_t n = tokens.size();
    seqs_.assign(n, seq);
    pos_.resize(n);
    for (std::size_t i = 0; i < n; ++i) pos_[i] = s.length + static_cast<int>(i);
    tokens_.assign(tokens.begin(), tokens.end());
    out_rows_.clear();
    if (!logits_last.empty()) out_rows_.push_back(static_cast<int>(n - 1));
    forward(logits_last.data());
  }

  void decode(std::span<const DecodeStep> steps, std::span<float> logits) override {
    if (steps.empty()) return;
    if (logits.size() != steps.size() * static_cast<std::size_t>(config_.n_vocab)) {
      throw std::invalid_argument("decode: logits buffer must hold steps * n_vocab floats");
    }
    const std::size_t n = steps.size();
    seqs_.resize(n);
    pos_.resize(n);
    tokens_.resize(n);
    out_rows_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      Sequence& s = slot(steps[i].seq);
      for (std::size_t j = 0; j < i; ++j) {
        if (seqs_[j] == steps[i].seq) throw std::invalid_argument("decode: a sequence appears twice in one batch");
      }
      if (s.length + 1 > max_context_) {
        throw std::invalid_argument("decode: sequence " + std::to_string(steps[i].seq) + " is full (" +
                                    std::to_string(max_context_) + " tokens)");
      }
      seqs_[i] = steps[i].seq;
      pos_[i] = s.length;
      tokens_[i] = steps[i].token;
      out_rows_[i] = static_cast<int>(i);
    }
    forward(logits.data());
  }

 private:
  Sequence& slot(SeqId seq) {
    if (seq < 0 || seq >= max_sequences_ || !sequences_[static_cast<std::size_t>(seq)].used) {
      throw std::invalid_argument("unknown sequence " + std::to_string(seq));
    }
    return sequences_[static_cast<std::size_t>(seq)];
  }
  const Sequence& slot(SeqId seq) const { return const_cast<CpuBackend*>(this)->slot(seq); }

  // Runs the matrix products of `jobs` in one parallel step. The work units are chunks of rows of
  // the jobs laid end to end; WorkSplit gives each thread a contiguous share of them.
  void matmuls(std::initializer_list<MatJob> jobs, int ncols) {
    // Chunk size: 16 rows is one cache line of outputs per column (no two threads write one line
    // at batch 1) and small enough that a thread's early finish leaves little for the other.
    const int chunk = ncols >= 8 ? 4 : 16;
    MatJob list[4];
    int starts[5] = {0, 0, 0, 0, 0};
    int count = 0;
    for (const MatJob& j : jobs) {
      list[count] = j;
      starts[count + 1] = starts[count] + static_cast<int>((j.w->rows + chunk - 1) / chunk);
      ++count;
    }
    const int total = starts[count];
    auto unit = [&](int c) {
      int job = 0;
      while (c >= starts[job + 1]) ++job;
      const MatJob& j = list[job];
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
  void quantize_rows(const float* x, int n, int width, std::vector<ActBlock>& acts) {
    const std::size_t per = static_cast<std::size_t>(width / 32);
    if (acts.size() < per * static_cast<std::size_t>(n)) acts.resize(per * static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) kernels_.quantize(x + static_cast<std::size_t>(i) * static_cast<std::size_t>(width),
                                                   acts.data() + per * static_cast<std::size_t>(i), width);
  }

  void rmsnorm(const float* x, const TensorView& weight, float* out, int n) const {
    const int d = config_.n_embd;
    const auto* g = reinterpret_cast<const float*>(weight.data);
    for (int i = 0; i < n; ++i) {
      const float* xi = x + static_cast<std::size_t>(i) * d;
      float* oi = out + static_cast<std::size_t>(i) * d;
      float ss = 0;
      for (int e = 0; e < d; ++e) ss += xi[e] * xi[e];
      const float scale = 1.0f / std::sqrt(ss / static_cast<float>(d) + config_.rms_eps);
      for (int e = 0; e < d; ++e) oi[e] = xi[e] * scale * g[e];
    }
  }

  // Rotates adjacent pairs (2j, 2j+1) of each head: GGUF stores q and k permuted for this form.
  void rope(float* v, int heads, int pos) const {
    const int hd = config_.head_dim;
    for (int j = 0; j < hd / 2; ++j) {
      const double angle = static_cast<double>(pos) * inv_freq_[static_cast<std::size_t>(j)];
      const auto c = static_cast<float>(std::cos(angle)), s = static_cast<float>(std::sin(angle));
      for (int h = 0; h < heads; ++h) {
        float* p = v + static_cast<std::size_t>(h) * hd + 2 * j;
        const float a = p[0], b = p[1];
        p[0] = a * c - b * s;
        p[1] = a * s + b * c;
      }
    }
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

  void forward(float* logits) {
    const LlamaConfig& c = config_;
    const int n = static_cast<int>(tokens_.size());
    const int d = c.n_embd, kvd = c.kv_dim(), hd = c.head_dim, ff = c.n_ff;
    const std::size_t nd = static_cast<std::size_t>(n) * d;
    for (std::int32_t t : tokens_) {
      if (t < 0 || t >= c.n_vocab) throw std::invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary");
    }
    x_.resize(nd);
    xn_.resize(nd);
    q_.resize(nd);
    att_.resize(nd);
    tmp_.resize(nd);
    k_.resize(static_cast<std::size_t>(n) * kvd);
    v_.resize(static_cast<std::size_t>(n) * kvd);
    gate_.resize(static_cast<std::size_t>(n) * ff);
    up_.resize(static_cast<std::size_t>(n) * ff);
    for (int i = 0; i < n; ++i) dequantize_row(weights_->token_embd(), tokens_[static_cast<std::size_t>(i)], x_.data() + static_cast<std::size_t>(i) * d);

    // Cache space for the new positions; sizes only grow here, before threads read the caches.
    for (int i = 0; i < n; ++i) {
      Sequence& s = sequences_[static_cast<std::size_t>(seqs_[static_cast<std::size_t>(i)])];
      const std::size_t need = static_cast<std::size_t>(pos_[static_cast<std::size_t>(i)] + 1) * kvd;
      for (int l = 0; l < c.n_layer; ++l) {
        if (s.k[static_cast<std::size_t>(l)].size() < need) {
          s.k[static_cast<std::size_t>(l)].resize(need);
          s.v[static_cast<std::size_t>(l)].resize(need);
        }
      }
    }

    const float att_scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const int group = c.group_size();
    for (int l = 0; l < c.n_layer; ++l) {
      const LayerWeights& w = weights_->layers()[static_cast<std::size_t>(l)];
      rmsnorm(x_.data(), w.attn_norm, xn_.data(), n);
      quantize_rows(xn_.data(), n, d, acts_);
      matmuls({{&w.wq, acts_.data(), xn_.data(), q_.data(), static_cast<std::size_t>(d)},
               {&w.wk, acts_.data(), xn_.data(), k_.data(), static_cast<std::size_t>(kvd)},
               {&w.wv, acts_.data(), xn_.data(), v_.data(), static_cast<std::size_t>(kvd)}},
              n);
      // New keys and values go into each sequence's cache before any token of the batch attends.
      for (int i = 0; i < n; ++i) {
        float* k = k_.data() + static_cast<std::size_t>(i) * kvd;
        rope(k, c.n_head_kv, pos_[static_cast<std::size_t>(i)]);
        rope(q_.data() + static_cast<std::size_t>(i) * d, c.n_head, pos_[static_cast<std::size_t>(i)]);
        Sequence& s = sequences_[static_cast<std::size_t>(seqs_[static_cast<std::size_t>(i)])];
        const std::size_t at = static_cast<std::size_t>(pos_[static_cast<std::size_t>(i)]) * kvd;
        std::memcpy(s.k[static_cast<std::size_t>(l)].data() + at, k, sizeof(float) * kvd);
        std::memcpy(s.v[static_cast<std::size_t>(l)].data() + at, v_.data() + static_cast<std::size_t>(i) * kvd, sizeof(float) * kvd);
      }
      parallel_for(n * c.n_head, [&](int item) {
        const int i = item / c.n_head, h = item % c.n_head, g = h / group;
        const Sequence& s = sequences_[static_cast<std::size_t>(seqs_[static_cast<std::size_t>(i)])];
        const int len = pos_[static_cast<std::size_t>(i)] + 1;
        const float* q = q_.data() + static_cast<std::size_t>(i) * d + static_cast<std::size_t>(h) * hd;
        const float* kc = s.k[static_cast<std::size_t>(l)].data() + static_cast<std::size_t>(g) * hd;
        const float* vc = s.v[static_cast<std::size_t>(l)].data() + static_cast<std::size_t>(g) * hd;
        thread_local std::vector<float> scores;
        scores.resize(static_cast<std::size_t>(len));
        float* o = att_.data() + static_cast<std::size_t>(i) * d + static_cast<std::size_t>(h) * hd;
        kernels_.attend(q, kc, vc, len, static_cast<std::size_t>(kvd), hd, att_scale, scores.data(), o);
      });
      quantize_rows(att_.data(), n, d, acts_);
      matmuls({{&w.wo, acts_.data(), att_.data(), tmp_.data(), static_cast<std::size_t>(d)}}, n);
      for (std::size_t e = 0; e < nd; ++e) x_[e] += tmp_[e];

      rmsnorm(x_.data(), w.ffn_norm, xn_.data(), n);
      quantize_rows(xn_.data(), n, d, acts_);
      matmuls({{&w.w_gate, acts_.data(), xn_.data(), gate_.data(), static_cast<std::size_t>(ff)},
               {&w.w_up, acts_.data(), xn_.data(), up_.data(), static_cast<std::size_t>(ff)}},
              n);
      const std::size_t nf = static_cast<std::size_t>(n) * ff;
      for (std::size_t e = 0; e < nf; ++e) {
        const float g = gate_[e];
        gate_[e] = g / (1.0f + std::exp(-g)) * up_[e];
      }
      quantize_rows(gate_.data(), n, ff, acts_);
      matmuls({{&w.w_down, acts_.data(), gate_.data(), tmp_.data(), static_cast<std::size_t>(d)}}, n);
      for (std::size_t e = 0; e < nd; ++e) x_[e] += tmp_[e];
    }
    for (int i = 0; i < n; ++i) sequences_[static_cast<std::size_t>(seqs_[static_cast<std::size_t>(i)])].length = pos_[static_cast<std::size_t>(i)] + 1;

    if (out_rows_.empty() || logits == nullptr) return;
    // Only the rows whose logits are wanted go through the final norm and the vocabulary matrix.
    const int m = static_cast<int>(out_rows_.size());
    for (int r = 0; r < m; ++r) {
      std::memcpy(tmp_.data() + static_cast<std::size_t>(r) * d, x_.data() + static_cast<std::size_t>(out_rows_[static_cast<std::size_t>(r)]) * d, sizeof(float) * d);
    }
    rmsnorm(tmp_.data(), weights_->output_norm(), xn_.data(), m);
    quantize_rows(xn_.data(), m, d, acts_);
    matmuls({{&weights_->output(), acts_.data(), xn_.data(), logits, static_cast<std::size_t>(c.n_vocab)}}, m);
  }

  std::shared_ptr<const LlamaWeights> weights_;
  LlamaConfig config_;
  cpu::CpuKernels kernels_;
  cpu::ThreadPool pool_;
  cpu::WorkSplit split_{pool_.size()};
  int max_sequences_ = 1;
  int max_context_ = 0;
  std::vector<Sequence> sequences_;
  std::vector<double> inv_freq_;
  // The current batch.
  std::vector<std::int32_t> tokens_;
  std::vector<SeqId> seqs_;
  std::vector<int> pos_;
  std::vector<int> out_rows_;
  // Activations, [N][width] each.
  std::vector<float> x_, xn_, q_, k_, v_, att_, tmp_, gate_, up_;
  std::vector<ActBlock> acts_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(std::shared_ptr<const LlamaWeights> weights, const BackendOptions& options) {
  if (!weights) throw std::invalid_argument("make_cpu_backend: no weights");
  return std::make_unique<CpuBackend>(std::move(weights), options);
}

}  // namespace podworker::llm
