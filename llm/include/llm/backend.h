// The forward pass behind one interface, implemented on the CPU (llm/cpu/) and with CUDA (llm/cuda/).
//
// A backend owns the KV cache of up to max_sequences() sequences. A sequence is a slot: allocated,
// fed its prompt with prefill() (in one call or several chunks), then advanced one token at a time
// by decode(), which takes a batch of sequences — each at its own position — so one pass over the
// weights serves every running request (continuous batching: the caller may change the batch
// between any two calls). decode_sample()/prefill_sample() also pick the next token, letting a GPU
// sample on the device and return only token ids.
//
// Calls on one backend are not concurrent: the engine's scheduler thread is the only caller.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "llm/config.h"
#include "llm/sampling.h"
#include "llm/weights.h"

namespace podworker::llm {

using SeqId = std::int32_t;

// One sequence's step in a decode batch: `token` is appended at position sequence_length(seq).
struct DecodeStep {
  SeqId seq = -1;
  std::int32_t token = 0;
};

// A backend that was not built into this binary (CUDA off at compile time), or no device.
class BackendUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;  // "cpu", "cuda" or "reference"
  virtual const LlamaConfig& config() const = 0;
  virtual int max_sequences() const = 0;
  virtual int max_context() const = 0;  // tokens one sequence can hold (prompt + generated)

  // A free slot, empty (length 0); -1 when all max_sequences() are in use.
  virtual SeqId alloc_sequence() = 0;
  // Returns the slot; its cache contents are forgotten. Unknown or free ids are ignored.
  virtual void free_sequence(SeqId seq) = 0;
  virtual int sequence_length(SeqId seq) const = 0;

  // Appends `tokens` (non-empty) to the sequence, all in one batched pass. Writes the logits of the
  // last token to `logits_last` when it is non-empty (size n_vocab). Throws std::invalid_argument
  // for an unknown sequence, a token outside the vocabulary, or overflowing max_context().
  virtual void prefill(SeqId seq, std::span<const std::int32_t> tokens,
                       std::span<float> logits_last) = 0;

  // One token for each step's sequence (distinct sequences), sharing one pass over the weights.
  // `logits` has steps.size() * n_vocab floats, row i for step i. Same errors as prefill().
  virtual void decode(std::span<const DecodeStep> steps, std::span<float> logits) = 0;

  // prefill() then sample the next token. The default samples on the host with sample_token().
  virtual std::int32_t prefill_sample(SeqId seq, std::span<const std::int32_t> tokens,
                                      const SampleSpec& spec);
  // decode() then sample one token per step into `out` (size steps.size()).
  virtual void decode_sample(std::span<const DecodeStep> steps, std::span<const SampleSpec> specs,
                             std::span<std::int32_t> out);
};

// reference: the oracle (llm/reference_backend.h), slow; never chosen by automatic.
enum class BackendKind { cpu, cuda, automatic, reference };
std::string_view backend_kind_name(BackendKind kind);
// "cpu", "cuda", "auto" or "reference"; throws std::invalid_argument otherwise.
BackendKind parse_backend_kind(std::string_view name);

struct BackendOptions {
  int max_sequences = 32;
  int max_context = 0;  // 0: min(n_ctx_train, 2048)
  int threads = 0;      // CPU worker threads; 0: std::thread::hardware_concurrency()
  int device = 0;       // CUDA device ordinal
};

// cpu: the CPU backend. cuda: the CUDA backend, from the module libpodworker_cuda.so opened on
// this first request (llm/cuda/module.h); BackendUnavailable when this build has none, the module or
// the CUDA libraries cannot be loaded, or no device is present. automatic: CUDA when a device is
// present and the module loads, else CPU. Logs the choice.
std::unique_ptr<Backend> make_backend(std::shared_ptr<const LlamaWeights> weights, BackendKind kind,
                                      const BackendOptions& options = {});

// Whether this build has the CUDA backend (the module is built when PODWORKER_HAVE_CUDA is on).
bool cuda_backend_compiled();

// Usable CUDA devices as the driver reports them (0 without a driver or a device). Loads no CUDA
// runtime: libcuda.so.1 is opened for the question and closed. Never throws.
int cuda_device_count();

}  // namespace podworker::llm
