#include "llm/forward.h"

namespace podworker::llm {

void llama_forward(LlamaOps& ops, const LlamaConfig& config, int rows, int out_rows) {
  ops.embed(Act::x, rows);
  for (int l = 0; l < config.n_layer; ++l) {
    ops.rmsnorm(Act::x, l, Norm::attn, Act::xn, rows);
    ops.project(l, Proj::qkv, Act::xn, Act::qkv, rows, false);
    // Every row's k and v go into the cache before any row attends: a prefill row reads the rows
    // before it in the same batch.
    ops.rope_store(l, Act::qkv, rows);
    ops.attention(l, Act::qkv, Act::att, rows);
    ops.project(l, Proj::wo, Act::att, Act::x, rows, true);
    ops.rmsnorm(Act::x, l, Norm::ffn, Act::xn, rows);
    ops.project(l, Proj::gate_up, Act::xn, Act::gate_up, rows, false);
    ops.swiglu(Act::gate_up, Act::ffn, rows);
    ops.project(l, Proj::down, Act::ffn, Act::x, rows, true);
  }
  if (out_rows == 0) return;
  // Only the rows whose logits are wanted go through the final norm and the vocabulary matrix.
  ops.select_output_rows(Act::x, Act::out_x, out_rows);
  ops.rmsnorm(Act::out_x, 0, Norm::output, Act::xn, out_rows);
  ops.output_logits(Act::xn, Act::logits, out_rows);
}

}  // namespace podworker::llm
