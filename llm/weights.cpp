#include "llm/weights.h"

#include "kernels/dequantize.h"
#include "model/gguf.h"

namespace podworker::llm {

using kernels::GgmlType;

bool is_matrix_type(GgmlType type) {
  switch (type) {
    case GgmlType::f32:
    case GgmlType::f16:
    case GgmlType::q4_0:
    case GgmlType::q4_1:
    case GgmlType::q5_0:
    case GgmlType::q8_0:
    case GgmlType::q4_k:
    case GgmlType::q5_k:
    case GgmlType::q6_k: return true;
    default: return false;
  }
}

namespace {

TensorView view_of(const model::TensorInfo& t) {
  TensorView v;
  v.name = t.name;
  v.type = t.type;
  v.cols = t.shape.empty() ? 1 : t.shape[0];
  v.rows = t.rows();
  v.data = t.data;
  v.bytes = t.bytes;
  return v;
}

std::string shape_text(const model::TensorInfo& t) {
  std::string s = "[";
  for (std::size_t i = 0; i < t.shape.size(); ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
  return s + "]";
}

const model::TensorInfo& need(const model::GgufFile& file, const std::string& name) {
  const model::TensorInfo* t = file.find_tensor(name);
  if (t == nullptr) throw ModelError("model file lacks tensor " + name);
  return *t;
}

TensorView vector_tensor(const model::GgufFile& file, const std::string& name, int n) {
  const model::TensorInfo& t = need(file, name);
  if (t.type != GgmlType::f32) {
    throw ModelError("tensor " + name + " has type " + std::string(kernels::type_name(t.type)) + ", expected F32");
  }
  if (t.shape.size() != 1 || t.shape[0] != n) {
    throw ModelError("tensor " + name + " has shape " + shape_text(t) + ", expected [" + std::to_string(n) + "]");
  }
  return view_of(t);
}

// `rows` rows of `cols` elements (ggml shape [cols, rows]) of a type the backends multiply.
TensorView matrix_tensor(const model::GgufFile& file, const std::string& name, int cols, int rows) {
  const model::TensorInfo& t = need(file, name);
  if (!is_matrix_type(t.type)) {
    throw ModelError("tensor " + name + " has unsupported type " + std::string(kernels::type_name(t.type)) +
                     " (supported: F32, F16, Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q5_K, Q6_K)");
  }
  if (t.shape.size() != 2 || t.shape[0] != cols || t.shape[1] != rows) {
    throw ModelError("tensor " + name + " has shape " + shape_text(t) + ", expected [" + std::to_string(cols) + ", " +
                     std::to_string(rows) + "]");
  }
  return view_of(t);
}

}  // namespace

std::shared_ptr<const LlamaWeights> LlamaWeights::from_gguf(std::shared_ptr<const model::GgufFile> file) {
  auto w = std::shared_ptr<LlamaWeights>(new LlamaWeights());
  w->config_ = LlamaConfig::from_gguf(*file);
  const LlamaConfig& c = w->config_;
  w->token_embd_ = matrix_tensor(*file, "token_embd.weight", c.n_embd, c.n_vocab);
  w->output_norm_ = vector_tensor(*file, "output_norm.weight", c.n_embd);
  if (file->find_tensor("output.weight") != nullptr) {
    w->output_ = matrix_tensor(*file, "output.weight", c.n_embd, c.n_vocab);
  } else {
    w->tied_output_ = true;
  }
  w->layers_.reserve(static_cast<std::size_t>(c.n_layer));
  for (int i = 0; i < c.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights l;
    l.attn_norm = vector_tensor(*file, p + "attn_norm.weight", c.n_embd);
    l.wq = matrix_tensor(*file, p + "attn_q.weight", c.n_embd, c.n_embd);
    l.wk = matrix_tensor(*file, p + "attn_k.weight", c.n_embd, c.kv_dim());
    l.wv = matrix_tensor(*file, p + "attn_v.weight", c.n_embd, c.kv_dim());
    l.wo = matrix_tensor(*file, p + "attn_output.weight", c.n_embd, c.n_embd);
    l.ffn_norm = vector_tensor(*file, p + "ffn_norm.weight", c.n_embd);
    l.w_gate = matrix_tensor(*file, p + "ffn_gate.weight", c.n_embd, c.n_ff);
    l.w_up = matrix_tensor(*file, p + "ffn_up.weight", c.n_embd, c.n_ff);
    l.w_down = matrix_tensor(*file, p + "ffn_down.weight", c.n_ff, c.n_embd);
    w->layers_.push_back(std::move(l));
  }
  w->file_ = std::move(file);
  return w;
}

void dequantize_row(const TensorView& t, std::int64_t row, float* out) {
  kernels::cpu::dequantize(t.type, t.row(row), out, t.cols);
}

}  // namespace podworker::llm
