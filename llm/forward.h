// The llama forward pass, written once against the ops a backend implements.
//
// A batch is `rows` tokens, each with its own sequence and position (prefill: consecutive positions
// of one sequence; decode: one position of each of several sequences). Activations are buffers the
// backend owns, named by Act; their layout and precision are the backend's choice (the CUDA prefill
// keeps GEMM inputs in F16, the CPU backend splits Q, K and V), as long as the ops that read a
// buffer understand what the ops that wrote it left there. Every op has its reference in
// kernels/cpu (the reference backend, llm/reference/, is those references and nothing else); fused
// ops are ops here (project with accumulate = mat-vec + residual add, rope_store = RoPE + KV store,
// swiglu over the gate|up projection), each with a reference of its own.
#pragma once

#include "llm/config.h"

namespace podworker::llm {

enum class Act {
  x,        // the residual stream, [rows][n_embd]
  xn,       // a normalized copy of x (the input of a projection)
  qkv,      // the Q, K and V projections of each row
  att,      // attention output, [rows][n_embd]
  gate_up,  // the gate and up projections of the FFN
  ffn,      // silu(gate) * up, [rows][n_ff]
  out_x,    // the rows of x whose logits are wanted, [out_rows][n_embd]
  logits,   // [out_rows][n_vocab]
};

// The projections of a layer; Q, K, V (and gate, up) are one op, however a backend stores them.
enum class Proj { qkv, wo, gate_up, down };
// Norm weights: a layer's attention or FFN norm, or the output norm.
enum class Norm { attn, ffn, output };

class LlamaOps {
 public:
  virtual ~LlamaOps() = default;
  // out = the embedding rows of the batch's tokens (get_rows).
  virtual void embed(Act out, int rows) = 0;
  // out = rmsnorm(in) with the given norm weights (layer is ignored for Norm::output).
  virtual void rmsnorm(Act in, int layer, Norm norm, Act out, int rows) = 0;
  // out = W in (accumulate: out += W in, the residual add fused into the projection).
  virtual void project(int layer, Proj w, Act in, Act out, int rows, bool accumulate) = 0;
  // Rotates q and k of `qkv` at each row's position and stores k and v into its sequence's cache.
  virtual void rope_store(int layer, Act qkv, int rows) = 0;
  // Each row's queries over its sequence's cache, positions 0..pos (causal).
  virtual void attention(int layer, Act qkv, Act out, int rows) = 0;
  // out = silu(gate) * up.
  virtual void swiglu(Act gate_up, Act out, int rows) = 0;
  // out = the rows of `in` whose logits the caller asked for, in that order.
  virtual void select_output_rows(Act in, Act out, int out_rows) = 0;
  // out = the output (vocabulary) matrix times in.
  virtual void output_logits(Act in, Act out, int out_rows) = 0;
};

// The graph: embed, per layer attention and FFN blocks with residuals, then logits for out_rows
// rows (none when out_rows is 0).
void llama_forward(LlamaOps& ops, const LlamaConfig& config, int rows, int out_rows);

}  // namespace podworker::llm
