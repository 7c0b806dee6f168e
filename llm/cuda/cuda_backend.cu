// The CUDA forward pass (llm/backend.h). Weights are uploaded once: each layer's Q/K/V matrices are
// concatenated into one matrix, and gate/up into another, kept in their GGUF quantization for the
// decode mat-vecs (one pass over the weights serves the whole batch), with F16 copies for the cuBLAS
// GEMMs of prefill. The KV cache is F32 on the device, [slot][position][kv_dim] per layer, with one
// extra scratch slot that the padding rows of a decode batch write into.
//
// Decode runs a batch padded to a bucket (1, 2, 4, ... 64 sequences). Tokens, slots, positions,
// lengths and sampling parameters travel in one StepInputs block copied to the device each step, so
// the kernels of a bucket are captured once in a CUDA graph (after one eager run, which also does any
// lazy initialisation outside the capture) and replayed unchanged. Sampling runs on the device and
// only token ids come back, through pinned memory, with one stream synchronisation per step.
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kernels/attention.h"
#include "kernels/dequantize.h"
#include "kernels/device.h"
#include "kernels/gemm.h"
#include "kernels/get_rows.h"
#include "kernels/matvec.h"
#include "kernels/rmsnorm.h"
#include "kernels/sampling.h"
#include "llm/cuda/cuda_backend.h"
#include "llm/cuda/cuda_check.h"
#include "llm/cuda/cuda_tuning.h"
#include "llm/cuda/forward_kernels.h"
#include "llm/forward.h"
#include "podworker/log.h"

namespace podworker::llm {

namespace {

namespace kc = kernels::cuda;
using kernels::GgmlType;
using kernels::half_bits;

constexpr int kMaxBatch = kernels::kMaxMatvecBatch;  // sequences per graph launch
constexpr int kBuckets = 7;                           // 1, 2, 4, ..., 64

int bucket_index(int n) {
  int i = 0;
  while ((1 << i) < n) ++i;
  return i;
}

// Everything a decode step reads from the host, copied with one cudaMemcpyAsync.
struct StepInputs {
  std::int32_t tokens[kMaxBatch];
  std::int32_t slots[kMaxBatch];
  std::int32_t pos[kMaxBatch];
  std::int32_t lens[kMaxBatch];      // pos + 1: what attention reads
  std::int32_t counters[kMaxBatch];  // the sampler's RNG counter (the SampleSpec's step)
  kernels::SampleParams params[kMaxBatch];
};

// The device address of a member of a device-resident block, without dereferencing it on the host.
template <class T, class Block>
const T* member_ptr(const Block* device_block, std::size_t offset) {
  return reinterpret_cast<const T*>(reinterpret_cast<const std::byte*>(device_block) + offset);
}

class Graph {
 public:
  explicit Graph(cudaGraph_t g) : g_(g) {}
  ~Graph() {
    if (g_ != nullptr) cudaGraphDestroy(g_);
  }
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  cudaGraph_t get() const { return g_; }

 private:
  cudaGraph_t g_;
};

class GraphExec {
 public:
  GraphExec() = default;
  explicit GraphExec(cudaGraphExec_t e) : e_(e) {}
  ~GraphExec() { reset(); }
  GraphExec(GraphExec&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
  GraphExec& operator=(GraphExec&& o) noexcept {
    if (this != &o) {
      reset();
      e_ = std::exchange(o.e_, nullptr);
    }
    return *this;
  }
  GraphExec(const GraphExec&) = delete;
  GraphExec& operator=(const GraphExec&) = delete;
  explicit operator bool() const { return e_ != nullptr; }
  cudaGraphExec_t get() const { return e_; }

 private:
  void reset() {
    if (e_ != nullptr) cudaGraphExecDestroy(e_);
    e_ = nullptr;
  }
  cudaGraphExec_t e_ = nullptr;
};

// A weight matrix on the device: `data` in `type` for the mat-vec, `f16` for cuBLAS (may be null).
struct Matrix {
  GgmlType type = GgmlType::f32;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  const void* data = nullptr;
  const half_bits* f16 = nullptr;
  kc::DeviceBuffer<std::byte> quant;
  kc::DeviceBuffer<half_bits> f16_copy;
};

std::size_t matrix_bytes(const TensorView& t) { return static_cast<std::size_t>(t.rows) * t.row_bytes(); }

// The weight types kernels::cuda::matvec reads directly; any other (Q6_K, BF16, ...) goes through F16.
bool matvec_reads(GgmlType t) {
  return t == GgmlType::q4_0 || t == GgmlType::q4_1 || t == GgmlType::q8_0 || t == GgmlType::f16 ||
         t == GgmlType::f32;
}

// Concatenates the rows of `parts` (same width) into one device matrix. Parts of one type that the
// mat-vec reads stay in it; mixed or other types fall back to F16 for the mat-vec too. `with_f16` adds
// the dequantized copy.
Matrix upload_rows(std::initializer_list<const TensorView*> parts, bool with_f16, kc::Stream& stream) {
  Matrix m;
  const TensorView& first = **parts.begin();
  m.cols = first.cols;
  bool same_type = true;
  std::size_t bytes = 0;
  for (const TensorView* p : parts) {
    if (p->cols != m.cols) throw ModelError("CUDA backend: " + p->name + " differs in width from " + first.name);
    same_type = same_type && p->type == first.type;
    m.rows += p->rows;
    bytes += matrix_bytes(*p);
  }
  const bool direct = same_type && matvec_reads(first.type);
  if (direct) {
    m.quant = kc::DeviceBuffer<std::byte>(bytes);
    std::size_t at = 0;
    for (const TensorView* p : parts) {
      kc::copy_to_device(m.quant.get() + at, p->data, matrix_bytes(*p), stream);
      at += matrix_bytes(*p);
    }
    m.type = first.type;
    m.data = m.quant.get();
  }
  if (with_f16 || !direct) {
    m.f16_copy = kc::DeviceBuffer<half_bits>(static_cast<std::size_t>(m.rows * m.cols));
    std::int64_t row = 0;
    std::size_t at = 0;
    for (const TensorView* p : parts) {
      const std::int64_t n = p->rows * p->cols;
      if (direct) {
        kc::dequantize_to_f16(p->type, m.quant.get() + at, m.f16_copy.get() + row * m.cols, n, stream);
      } else {
        kc::DeviceBuffer<std::byte> staging(matrix_bytes(*p));
        kc::copy_to_device(staging.get(), p->data, matrix_bytes(*p), stream);
        kc::dequantize_to_f16(p->type, staging.get(), m.f16_copy.get() + row * m.cols, n, stream);
        stream.synchronize();  // the staging buffer is freed at the end of this iteration
      }
      row += p->rows;
      at += matrix_bytes(*p);
    }
    m.f16 = m.f16_copy.get();
    if (!direct) {
      m.type = GgmlType::f16;
      m.data = m.f16;
    }
  }
  return m;
}

int select_device(int device) {
  const int count = kc::device_count();
  if (count == 0) throw BackendUnavailable("CUDA backend requested but no CUDA device is present");
  if (device < 0 || device >= count) {
    throw BackendUnavailable("CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(count) +
                             " present)");
  }
  kc::set_device(device);
  return device;
}

struct SeqState {
  bool used = false;
  int length = 0;
};

struct Layer {
  const float* attn_norm = nullptr;
  const float* ffn_norm = nullptr;
  Matrix qkv, wo, gate_up, down;
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(std::shared_ptr<const LlamaWeights> weights, const BackendOptions& options, const CudaTuning& tuning)
      : weights_(std::move(weights)),
        config_(weights_->config()),
        tuning_(tuning),
        device_(select_device(options.device)) {
    const LlamaConfig& c = config_;
    max_seq_ = std::max(1, options.max_sequences);
    max_ctx_ = options.max_context > 0 ? options.max_context : std::min(c.n_ctx_train, 2048);
    if (max_ctx_ <= 0) throw ModelError("CUDA backend: the model has no context length");
    if (c.head_dim % 32 != 0 || c.head_dim > 256 || c.n_embd % 32 != 0 || c.n_ff % 32 != 0) {
      throw ModelError("CUDA backend needs head_dim a multiple of 32 up to 256 and hidden/FFN sizes that are "
                       "multiples of 32: " + c.describe());
    }
    tuning_.prefill_chunk = std::clamp(tuning_.prefill_chunk, 1, max_ctx_);
    qkv_dim_ = c.n_embd + 2 * c.kv_dim();
    upload_weights();
    allocate_buffers();
    fast_attention_ = tuning_.fast_attention && cuda::decode_attention_supported(c.head_dim, max_ctx_);
    if (fast_attention_) cuda::prepare_decode_attention(c.head_dim, max_ctx_);
    stream_.synchronize();
    const double cache_mib = 2.0 * static_cast<double>(k_cache_.bytes()) / (1024.0 * 1024.0);
    log::info("llm: CUDA backend on " + kc::device_info(device_).name + ", " + std::to_string(max_seq_) +
              " sequence(s) x " + std::to_string(max_ctx_) + " tokens (KV cache " +
              std::to_string(static_cast<long long>(cache_mib)) + " MiB), graphs " + (tuning_.graphs ? "on" : "off") +
              ", " + c.describe());
  }

  ~CudaBackend() override {
    // Pending work may still use the buffers freed after this body.
    cudaStreamSynchronize(cuda::native(stream_.view()));
  }

  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string_view name() const override { return "cuda"; }
  const LlamaConfig& config() const override { return config_; }
  int max_sequences() const override { return max_seq_; }
  int max_context() const override { return max_ctx_; }

  SeqId alloc_sequence() override {
    for (std::size_t i = 0; i < seqs_.size(); ++i) {
      if (!seqs_[i].used) {
        seqs_[i] = {true, 0};
        return static_cast<SeqId>(i);
      }
    }
    return -1;
  }

  void free_sequence(SeqId seq) override {
    // The slot's cache is simply overwritten by its next user: attention never reads past a length.
    if (seq >= 0 && seq < max_seq_) seqs_[static_cast<std::size_t>(seq)] = {};
  }

  int sequence_length(SeqId seq) const override { return slot(seq).length; }

  void prefill(SeqId seq, std::span<const std::int32_t> tokens, std::span<float> logits_last) override {
    if (!logits_last.empty() && logits_last.size() != static_cast<std::size_t>(config_.n_vocab)) {
      throw std::invalid_argument("prefill: logits buffer must hold n_vocab floats");
    }
    run_prefill(seq, tokens, !logits_last.empty());
    if (!logits_last.empty()) {
      kc::copy_to_host(logits_last.data(), p_logits_.get(), logits_last.size_bytes(), stream_);
      stream_.synchronize();
    }
  }

  std::int32_t prefill_sample(SeqId seq, std::span<const std::int32_t> tokens, const SampleSpec& spec) override {
    run_prefill(seq, tokens, true);
    auto& in = h_prefill_sample_[0];
    if (spec.params.greedy()) {
      kc::argmax(p_logits_.get(), 1, config_.n_vocab, d_ids_.get(), stream_);
    } else {
      in.params = to_kernel_params(spec.params);
      in.counter = counter_of(spec);
      kc::copy_to_device(d_prefill_sample_.get(), &in, sizeof(in), stream_);
      const PrefillSampleInputs* d = d_prefill_sample_.get();
      kc::sample(p_logits_.get(), 1, config_.n_vocab,
                 member_ptr<kernels::SampleParams>(d, offsetof(PrefillSampleInputs, params)),
                 member_ptr<int>(d, offsetof(PrefillSampleInputs, counter)), d_ids_.get(), stream_);
    }
    kc::copy_to_host(h_ids_.get(), d_ids_.get(), sizeof(std::int32_t), stream_);
    stream_.synchronize();
    return h_ids_[0];
  }

  void decode(std::span<const DecodeStep> steps, std::span<float> logits) override {
    if (steps.empty()) return;
    if (logits.size() != steps.size() * static_cast<std::size_t>(config_.n_vocab)) {
      throw std::invalid_argument("decode: logits buffer must hold steps * n_vocab floats");
    }
    run_decode(steps, {}, logits.data(), nullptr);
  }

  void decode_sample(std::span<const DecodeStep> steps, std::span<const SampleSpec> specs,
                     std::span<std::int32_t> out) override {
    if (specs.size() != steps.size() || out.size() != steps.size()) {
      throw std::invalid_argument("decode_sample: steps, specs and out differ in size");
    }
    if (steps.empty()) return;
    run_decode(steps, specs, nullptr, out.data());
  }

 private:
  struct PrefillSampleInputs {
    kernels::SampleParams params;
    std::int32_t counter = 0;
  };

  static std::int32_t counter_of(const SampleSpec& spec) { return static_cast<std::int32_t>(spec.step & 0x7fffffffu); }

  SeqState& slot(SeqId seq) {
    if (seq < 0 || seq >= max_seq_ || !seqs_[static_cast<std::size_t>(seq)].used) {
      throw std::invalid_argument("unknown sequence " + std::to_string(seq));
    }
    return seqs_[static_cast<std::size_t>(seq)];
  }
  const SeqState& slot(SeqId seq) const { return const_cast<CudaBackend*>(this)->slot(seq); }

  void check_token(std::int32_t t) const {
    if (t < 0 || t >= config_.n_vocab) {
      throw std::invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary");
    }
  }

  float* k_cache(int layer) const { return k_cache_.get() + static_cast<std::size_t>(layer) * layer_cache_floats_; }
  float* v_cache(int layer) const { return v_cache_.get() + static_cast<std::size_t>(layer) * layer_cache_floats_; }

  kernels::AttentionShape attention_shape() const {
    kernels::AttentionShape s;
    s.n_q_heads = config_.n_head;
    s.n_kv_heads = config_.n_head_kv;
    s.head_dim = config_.head_dim;
    s.max_ctx = max_ctx_;
    s.n_slots = max_seq_ + 1;  // the sequences and the padding rows' scratch slot
    return s;
  }
  cuda::RopeStoreShape rope_shape() const {
    return {config_.n_head, config_.n_head_kv, config_.head_dim, max_ctx_, config_.rope_freq_base, max_seq_ + 1};
  }

  void upload_weights() {
    const LlamaConfig& c = config_;
    const std::size_t d = static_cast<std::size_t>(c.n_embd);
    // Norm weights: attn and ffn per layer, then the output norm, in one buffer.
    norms_ = kc::DeviceBuffer<float>(d * (2 * static_cast<std::size_t>(c.n_layer) + 1));
    const auto upload_norm = [&](const TensorView& t, std::size_t index) {
      if (t.type != GgmlType::f32 || t.cols * t.rows != c.n_embd) {
        throw ModelError("CUDA backend: norm " + t.name + " must be F32 of the hidden size");
      }
      kc::copy_to_device(norms_.get() + index * d, t.data, d * sizeof(float), stream_);
      return norms_.get() + index * d;
    };
    layers_.resize(static_cast<std::size_t>(c.n_layer));
    for (int l = 0; l < c.n_layer; ++l) {
      const LayerWeights& w = weights_->layers()[static_cast<std::size_t>(l)];
      Layer& L = layers_[static_cast<std::size_t>(l)];
      L.attn_norm = upload_norm(w.attn_norm, 2 * static_cast<std::size_t>(l));
      L.ffn_norm = upload_norm(w.ffn_norm, 2 * static_cast<std::size_t>(l) + 1);
      L.qkv = upload_rows({&w.wq, &w.wk, &w.wv}, true, stream_);
      L.wo = upload_rows({&w.wo}, true, stream_);
      L.gate_up = upload_rows({&w.w_gate, &w.w_up}, true, stream_);
      L.down = upload_rows({&w.w_down}, true, stream_);
      stream_.synchronize();  // the host pages of this layer may be dropped from the cache now
    }
    output_norm_ = upload_norm(weights_->output_norm(), 2 * static_cast<std::size_t>(c.n_layer));

    const TensorView& e = weights_->token_embd();
    embd_type_ = e.type;
    embd_ = kc::DeviceBuffer<std::byte>(matrix_bytes(e));
    kc::copy_to_device(embd_.get(), e.data, matrix_bytes(e), stream_);
    if (weights_->tied_output() && matvec_reads(embd_type_)) {
      output_type_ = embd_type_;
      output_data_ = embd_.get();
    } else {
      // An output matrix of its own, or a tied table the mat-vec cannot read (then an F16 copy).
      output_ = upload_rows({&weights_->output()}, false, stream_);
      output_type_ = output_.type;
      output_data_ = output_.data;
    }
  }

  void allocate_buffers() {
    const LlamaConfig& c = config_;
    const std::size_t d = static_cast<std::size_t>(c.n_embd), ff = static_cast<std::size_t>(c.n_ff);
    const std::size_t vocab = static_cast<std::size_t>(c.n_vocab);
    layer_cache_floats_ = static_cast<std::size_t>(max_seq_ + 1) * static_cast<std::size_t>(max_ctx_) *
                          static_cast<std::size_t>(c.kv_dim());
    k_cache_ = kc::DeviceBuffer<float>(layer_cache_floats_ * static_cast<std::size_t>(c.n_layer));
    v_cache_ = kc::DeviceBuffer<float>(layer_cache_floats_ * static_cast<std::size_t>(c.n_layer));
    // Zeroed so that a stale value can never be NaN (attention multiplies by 0 weights only past a
    // length it never reads, but padding rows read the scratch slot's position 0).
    kc::memset_device(k_cache_.get(), 0, k_cache_.bytes(), stream_);
    kc::memset_device(v_cache_.get(), 0, v_cache_.bytes(), stream_);

    const std::size_t B = kMaxBatch;
    x_ = kc::DeviceBuffer<float>(B * d);
    xn_ = kc::DeviceBuffer<float>(B * d);
    qkv_ = kc::DeviceBuffer<float>(B * static_cast<std::size_t>(qkv_dim_));
    att_ = kc::DeviceBuffer<float>(B * d);
    gu_ = kc::DeviceBuffer<float>(B * 2 * ff);
    h_ = kc::DeviceBuffer<float>(B * ff);
    xh_ = kc::DeviceBuffer<half_bits>(B * std::max(d, ff));
    logits_ = kc::DeviceBuffer<float>(B * vocab);
    d_step_ = kc::DeviceBuffer<StepInputs>(1);
    const std::size_t chunks = (static_cast<std::size_t>(max_seq_) + B - 1) / B;
    h_step_ = kc::PinnedBuffer<StepInputs>(chunks);
    d_ids_ = kc::DeviceBuffer<std::int32_t>(B);
    h_ids_ = kc::PinnedBuffer<std::int32_t>(chunks * B);

    const std::size_t P = static_cast<std::size_t>(tuning_.prefill_chunk);
    p_x_ = kc::DeviceBuffer<float>(P * d);
    p_xh_ = kc::DeviceBuffer<half_bits>(P * std::max(d, ff));
    p_qkv_ = kc::DeviceBuffer<float>(P * static_cast<std::size_t>(qkv_dim_));
    p_att_ = kc::DeviceBuffer<float>(P * d);
    p_gu_ = kc::DeviceBuffer<float>(P * 2 * ff);
    p_last_ = kc::DeviceBuffer<float>(d);
    p_logits_ = kc::DeviceBuffer<float>(vocab);
    p_ints_ = kc::DeviceBuffer<std::int32_t>(3 * static_cast<std::size_t>(max_ctx_));
    h_prefill_ints_ = kc::PinnedBuffer<std::int32_t>(3 * static_cast<std::size_t>(max_ctx_));
    d_prefill_sample_ = kc::DeviceBuffer<PrefillSampleInputs>(1);
    h_prefill_sample_ = kc::PinnedBuffer<PrefillSampleInputs>(1);
    seqs_.assign(static_cast<std::size_t>(max_seq_), SeqState{});
  }

  // y = W x (+ y) for `batch` rows: the quantized mat-vec, or cuBLAS on the F16 copy for large batches.
  void project(const Matrix& m, const float* x, float* y, int batch, bool accumulate) {
    if (batch >= tuning_.decode_gemm_from && m.f16 != nullptr) {
      kc::convert_to_f16(x, xh_.get(), batch * m.cols, stream_);
      kc::gemm(cublas_, GgmlType::f16, m.f16, m.rows, m.cols, xh_.get(), batch, y, accumulate ? 1.0f : 0.0f, stream_);
    } else {
      kc::matvec(m.type, m.data, m.rows, m.cols, x, y, batch, accumulate, stream_);
    }
  }

  // The ops of llm/forward.h on this backend's buffers. Decode (a batch padded to a bucket, inputs in
  // d_step_) keeps activations in F32 and uses the quantized mat-vec (cuBLAS from decode_gemm_from
  // rows); prefill (one chunk of one sequence) keeps every GEMM input in F16 for cuBLAS: the norms,
  // SwiGLU and the attention output write F16 (rmsnorm_to_f16, swiglu_fused to F16, a conversion).
  class Ops final : public LlamaOps {
   public:
    struct Inputs {
      bool prefill = false;
      const int* tokens = nullptr;  // device memory, one per row
      const int* slots = nullptr;
      const int* pos = nullptr;
      const int* lens = nullptr;  // decode: pos + 1
      SeqId seq = 0;              // prefill: the sequence and the position of the chunk's first row
      int start_pos = 0;
      int rows = 0;               // prefill: the chunk's rows (out_x is the last)
    };
    Ops(CudaBackend& b, const Inputs& in) : b_(b), in_(in), s_(b.stream_) {}

    void embed(Act out, int rows) override {
      kc::get_rows(b_.embd_type_, b_.embd_.get(), b_.config_.n_vocab, b_.config_.n_embd, in_.tokens, rows, f32(out), s_);
    }

    void rmsnorm(Act in, int layer, Norm norm, Act out, int rows) override {
      const LlamaConfig& c = b_.config_;
      const Layer& L = b_.layers_[static_cast<std::size_t>(layer)];
      const float* w = norm == Norm::output ? b_.output_norm_ : norm == Norm::attn ? L.attn_norm : L.ffn_norm;
      if (in_.prefill && norm != Norm::output) {
        cuda::rmsnorm_to_f16(f32(in), w, b_.p_xh_.get(), rows, c.n_embd, c.rms_eps, s_);
      } else {
        kc::rmsnorm(f32(in), w, f32(out), rows, c.n_embd, c.rms_eps, s_);
      }
    }

    void project(int layer, Proj p, Act in, Act out, int rows, bool accumulate) override {
      const Layer& L = b_.layers_[static_cast<std::size_t>(layer)];
      const Matrix& m = p == Proj::qkv ? L.qkv : p == Proj::wo ? L.wo : p == Proj::gate_up ? L.gate_up : L.down;
      if (!in_.prefill) return b_.project(m, f32(in), f32(out), rows, accumulate);
      // Prefill: xn and ffn are already F16 in p_xh_; the attention output is converted here.
      if (in == Act::att) kc::convert_to_f16(f32(in), b_.p_xh_.get(), static_cast<std::int64_t>(rows) * m.cols, s_);
      kc::gemm(b_.cublas_, GgmlType::f16, m.f16, m.rows, m.cols, b_.p_xh_.get(), rows, f32(out),
               accumulate ? 1.0f : 0.0f, s_);
    }

    void rope_store(int layer, Act qkv, int rows) override {
      cuda::rope_store(f32(qkv), b_.qkv_dim_, rows, b_.rope_shape(), b_.k_cache(layer), b_.v_cache(layer), in_.slots,
                       in_.pos, s_);
    }

    void attention(int layer, Act qkv, Act out, int rows) override {
      const LlamaConfig& c = b_.config_;
      const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
      if (in_.prefill) {
        kc::attention_prefill(f32(qkv), b_.qkv_dim_, b_.k_cache(layer), b_.v_cache(layer), f32(out), rows,
                              b_.attention_shape(), in_.seq, in_.start_pos, scale, s_);
      } else if (b_.fast_attention_) {
        cuda::decode_attention(f32(qkv), b_.qkv_dim_, b_.k_cache(layer), b_.v_cache(layer), f32(out), rows, c.n_head,
                               c.n_head_kv, c.head_dim, b_.max_ctx_, b_.max_seq_ + 1, in_.slots, in_.lens, scale, s_);
      } else {
        kc::attention_decode(f32(qkv), b_.qkv_dim_, b_.k_cache(layer), b_.v_cache(layer), f32(out), rows,
                             b_.attention_shape(), in_.slots, in_.lens, scale, s_);
      }
    }

    void swiglu(Act gate_up, Act out, int rows) override {
      if (in_.prefill) {
        cuda::swiglu_fused(f32(gate_up), rows, b_.config_.n_ff, b_.p_xh_.get(), s_);
      } else {
        cuda::swiglu_fused(f32(gate_up), rows, b_.config_.n_ff, f32(out), s_);
      }
    }

    // Decode computes logits for every row of the bucket (out_x is x itself); prefill for its last
    // row, which out_x points at.
    void select_output_rows(Act, Act, int) override {}

    void output_logits(Act in, Act out, int out_rows) override {
      kc::matvec(b_.output_type_, b_.output_data_, b_.config_.n_vocab, b_.config_.n_embd, f32(in), f32(out), out_rows,
                 false, s_);
    }

   private:
    float* f32(Act a) const {
      if (in_.prefill) {
        switch (a) {
          case Act::x: return b_.p_x_.get();
          case Act::qkv: return b_.p_qkv_.get();
          case Act::att: return b_.p_att_.get();
          case Act::gate_up: return b_.p_gu_.get();
          case Act::out_x: return b_.p_x_.get() + static_cast<std::size_t>(in_.rows - 1) * b_.config_.n_embd;
          case Act::xn: return b_.p_last_.get();  // only the output norm writes xn as F32 here
          case Act::logits: return b_.p_logits_.get();
          case Act::ffn: break;  // F16 in p_xh_
        }
        throw std::logic_error("CUDA prefill: no F32 buffer for this activation");
      }
      switch (a) {
        case Act::x:
        case Act::out_x: return b_.x_.get();
        case Act::xn: return b_.xn_.get();
        case Act::qkv: return b_.qkv_.get();
        case Act::att: return b_.att_.get();
        case Act::gate_up: return b_.gu_.get();
        case Act::ffn: return b_.h_.get();
        case Act::logits: return b_.logits_.get();
      }
      return nullptr;
    }

    CudaBackend& b_;
    Inputs in_;
    kc::StreamView s_;
  };

  // The kernels of one decode step for a batch of `B` rows, reading StepInputs from d_step_.
  void enqueue_decode(int B) {
    const StepInputs* in = d_step_.get();
    Ops::Inputs inputs;
    inputs.tokens = member_ptr<int>(in, offsetof(StepInputs, tokens));
    inputs.slots = member_ptr<int>(in, offsetof(StepInputs, slots));
    inputs.pos = member_ptr<int>(in, offsetof(StepInputs, pos));
    inputs.lens = member_ptr<int>(in, offsetof(StepInputs, lens));
    Ops ops(*this, inputs);
    llama_forward(ops, config_, B, B);
  }

  GraphExec capture(int B) {
    const cudaStream_t st = cuda::native(stream_.view());
    cuda::check(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    try {
      enqueue_decode(B);
    } catch (...) {
      cudaGraph_t broken = nullptr;
      cudaStreamEndCapture(st, &broken);  // leaves the stream usable again
      if (broken != nullptr) cudaGraphDestroy(broken);
      cudaGetLastError();  // clears the error the failed capture left behind
      throw;
    }
    cudaGraph_t raw = nullptr;
    cuda::check(cudaStreamEndCapture(st, &raw), "cudaStreamEndCapture");
    const Graph graph(raw);
    cudaGraphExec_t exec = nullptr;
    cuda::check(cudaGraphInstantiate(&exec, graph.get(), 0), "cudaGraphInstantiate");
    return GraphExec(exec);
  }

  // One decode step of the bucket `B` on the inputs already copied to d_step_.
  void forward_decode(int B) {
    const auto bucket = static_cast<std::size_t>(bucket_index(B));
    if (!tuning_.graphs || graph_failed_[bucket]) return enqueue_decode(B);
    GraphExec& g = graphs_[bucket];
    if (g) {
      cuda::check(cudaGraphLaunch(g.get(), cuda::native(stream_.view())), "cudaGraphLaunch");
      return;
    }
    // The bucket's first step runs eagerly (lazy module loading and cuBLAS set-up happen outside a
    // capture), then its graph is captured for the steps after it.
    enqueue_decode(B);
    try {
      g = capture(B);
    } catch (const std::exception& e) {
      // The eager launches above did this step's work; a bucket that cannot be captured keeps
      // launching eagerly instead of failing every later step the same way.
      graph_failed_[bucket] = true;
      log::warn("llm: CUDA graph capture failed for batch " + std::to_string(B) + " (" + e.what() +
                "); launching its kernels directly");
    }
  }

  void run_decode(std::span<const DecodeStep> steps, std::span<const SampleSpec> specs, float* logits,
                  std::int32_t* out) {
    cuda::check(cudaSetDevice(device_), "cudaSetDevice");
    // Validate everything before any device work, so a bad request changes nothing.
    std::vector<char> seen(static_cast<std::size_t>(max_seq_), 0);
    for (const DecodeStep& st : steps) {
      const SeqState& s = slot(st.seq);
      if (seen[static_cast<std::size_t>(st.seq)]) throw std::invalid_argument("decode: a sequence appears twice in one batch");
      seen[static_cast<std::size_t>(st.seq)] = 1;
      if (s.length + 1 > max_ctx_) {
        throw std::invalid_argument("decode: sequence " + std::to_string(st.seq) + " is full (" +
                                    std::to_string(max_ctx_) + " tokens)");
      }
      check_token(st.token);
    }
    const int n = static_cast<int>(steps.size());
    const int vocab = config_.n_vocab;
    for (int start = 0, chunk = 0; start < n; start += kMaxBatch, ++chunk) {
      const int m = std::min(kMaxBatch, n - start);
      const int B = 1 << bucket_index(m);
      StepInputs& in = h_step_[static_cast<std::size_t>(chunk)];
      bool greedy = true;
      for (int i = 0; i < B; ++i) {
        if (i < m) {
          const DecodeStep& st = steps[static_cast<std::size_t>(start + i)];
          const int len = seqs_[static_cast<std::size_t>(st.seq)].length;
          in.tokens[i] = st.token;
          in.slots[i] = st.seq;
          in.pos[i] = len;
          in.lens[i] = len + 1;
          if (!specs.empty()) {
            const SampleSpec& sp = specs[static_cast<std::size_t>(start + i)];
            in.params[i] = to_kernel_params(sp.params);
            in.counters[i] = counter_of(sp);
            greedy = greedy && sp.params.greedy();
          }
        } else {
          // Padding rows: a valid token, written to the scratch slot, never read back.
          in.tokens[i] = 0;
          in.slots[i] = max_seq_;
          in.pos[i] = 0;
          in.lens[i] = 1;
          in.counters[i] = 0;
          in.params[i] = {};
        }
      }
      kc::copy_to_device(d_step_.get(), &in, sizeof(StepInputs), stream_);
      forward_decode(B);
      if (logits != nullptr) {
        kc::copy_to_host(logits + static_cast<std::size_t>(start) * vocab, logits_.get(),
                         static_cast<std::size_t>(m) * vocab * sizeof(float), stream_);
      }
      if (out != nullptr) {
        if (greedy) {
          kc::argmax(logits_.get(), m, vocab, d_ids_.get(), stream_);
        } else {
          const StepInputs* d = d_step_.get();
          kc::sample(logits_.get(), m, vocab, member_ptr<kernels::SampleParams>(d, offsetof(StepInputs, params)),
                     member_ptr<int>(d, offsetof(StepInputs, counters)), d_ids_.get(), stream_);
        }
        kc::copy_to_host(h_ids_.get() + start, d_ids_.get(), static_cast<std::size_t>(m) * sizeof(std::int32_t),
                         stream_);
      }
    }
    stream_.synchronize();  // the one host-device synchronisation of the step
    for (int i = 0; i < n; ++i) {
      ++seqs_[static_cast<std::size_t>(steps[static_cast<std::size_t>(i)].seq)].length;
      if (out != nullptr) out[i] = h_ids_[static_cast<std::size_t>(i)];
    }
  }

  // Appends `tokens` to `seq` in chunks of prefill_chunk tokens through cuBLAS; with `logits`, the
  // last token's logits are left in p_logits_.
  void run_prefill(SeqId seq, std::span<const std::int32_t> tokens, bool logits) {
    cuda::check(cudaSetDevice(device_), "cudaSetDevice");
    if (tokens.empty()) throw std::invalid_argument("prefill: no tokens");
    SeqState& state = slot(seq);
    const int n = static_cast<int>(tokens.size());
    if (tokens.size() > static_cast<std::size_t>(max_ctx_) || state.length + n > max_ctx_) {
      throw std::invalid_argument("prefill: " + std::to_string(state.length + tokens.size()) +
                                  " tokens exceed the context of " + std::to_string(max_ctx_));
    }
    for (std::int32_t t : tokens) check_token(t);

    // The previous prefill's upload must have left the pinned staging buffer before it is rewritten.
    prefill_uploaded_.synchronize();
    std::int32_t* h = h_prefill_ints_.get();
    for (int i = 0; i < n; ++i) {
      h[i] = tokens[static_cast<std::size_t>(i)];
      h[n + i] = state.length + i;
      h[2 * n + i] = seq;
    }
    kc::copy_to_device(p_ints_.get(), h, 3 * static_cast<std::size_t>(n) * sizeof(std::int32_t), stream_);
    prefill_uploaded_.record(stream_);

    const int chunk = tuning_.prefill_chunk;
    for (int t0 = 0; t0 < n; t0 += chunk) {
      const int T = std::min(chunk, n - t0);
      Ops::Inputs inputs;
      inputs.prefill = true;
      inputs.tokens = p_ints_.get() + t0;
      inputs.pos = p_ints_.get() + n + t0;
      inputs.slots = p_ints_.get() + 2 * n + t0;
      inputs.seq = seq;
      inputs.start_pos = state.length + t0;
      inputs.rows = T;
      Ops ops(*this, inputs);
      llama_forward(ops, config_, T, logits && t0 + T == n ? 1 : 0);
    }
    state.length += n;
  }

  std::shared_ptr<const LlamaWeights> weights_;
  LlamaConfig config_;
  CudaTuning tuning_;
  int device_;  // selected before any member below touches the device
  kc::Stream stream_;
  kc::CublasHandle cublas_;
  kc::Event prefill_uploaded_{false};
  int max_seq_ = 1;
  int max_ctx_ = 0;
  int qkv_dim_ = 0;
  bool fast_attention_ = false;  // cuda::decode_attention rather than kernels::cuda::attention_decode
  std::vector<SeqState> seqs_;

  // Weights.
  kc::DeviceBuffer<float> norms_;
  std::vector<Layer> layers_;
  const float* output_norm_ = nullptr;
  kc::DeviceBuffer<std::byte> embd_;
  GgmlType embd_type_ = GgmlType::f32;
  Matrix output_;  // only when the file has its own output.weight
  GgmlType output_type_ = GgmlType::f32;
  const void* output_data_ = nullptr;

  // KV cache: per layer [max_seq + 1 slots][max_ctx][kv_dim], K and V.
  std::size_t layer_cache_floats_ = 0;
  kc::DeviceBuffer<float> k_cache_, v_cache_;

  // Decode activations, kMaxBatch rows each, read and written by the captured graphs.
  kc::DeviceBuffer<float> x_, xn_, qkv_, att_, gu_, h_, logits_;
  kc::DeviceBuffer<half_bits> xh_;
  kc::DeviceBuffer<StepInputs> d_step_;
  kc::PinnedBuffer<StepInputs> h_step_;  // one per chunk of kMaxBatch sequences
  kc::DeviceBuffer<std::int32_t> d_ids_;
  kc::PinnedBuffer<std::int32_t> h_ids_;
  std::array<GraphExec, kBuckets> graphs_;
  std::array<bool, kBuckets> graph_failed_{};  // buckets whose capture failed: eager launches

  // Prefill activations, prefill_chunk rows each.
  kc::DeviceBuffer<float> p_x_, p_qkv_, p_att_, p_gu_, p_last_, p_logits_;
  kc::DeviceBuffer<half_bits> p_xh_;
  kc::DeviceBuffer<std::int32_t> p_ints_;  // tokens, positions, slots of the current prefill
  kc::PinnedBuffer<std::int32_t> h_prefill_ints_;
  kc::DeviceBuffer<PrefillSampleInputs> d_prefill_sample_;
  kc::PinnedBuffer<PrefillSampleInputs> h_prefill_sample_;
};

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  try {
    return std::stoi(v);
  } catch (const std::exception&) {
    log::warn(std::string("llm: ignoring ") + name + "=" + v + " (not an integer)");
    return fallback;
  }
}

}  // namespace

CudaTuning CudaTuning::from_environment() {
  CudaTuning t;
  t.graphs = env_int("PODWORKER_CUDA_GRAPHS", 1) != 0;
  t.decode_gemm_from = env_int("PODWORKER_CUDA_DECODE_GEMM_FROM", t.decode_gemm_from);
  t.fast_attention = env_int("PODWORKER_CUDA_FAST_ATTENTION", 1) != 0;
  return t;
}

std::unique_ptr<Backend> make_cuda_backend_tuned(std::shared_ptr<const LlamaWeights> weights,
                                                 const BackendOptions& options, const CudaTuning& tuning) {
  if (!weights) throw std::invalid_argument("make_cuda_backend: no weights");
  return std::make_unique<CudaBackend>(std::move(weights), options, tuning);
}

std::unique_ptr<Backend> make_cuda_backend(std::shared_ptr<const LlamaWeights> weights,
                                           const BackendOptions& options) {
  return make_cuda_backend_tuned(std::move(weights), options, CudaTuning::from_environment());
}

}  // namespace podworker::llm
