#include "model/quantize.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "kernels/kquant.h"
#include "kernels/dequantize.h"

namespace podworker::model {

namespace {

using kernels::GgmlType;

constexpr GgmlType kTypes[] = {GgmlType::f32,  GgmlType::f16,  GgmlType::bf16, GgmlType::q4_0,
                               GgmlType::q4_1, GgmlType::q5_0, GgmlType::q8_0, GgmlType::q4_k,
                               GgmlType::q5_k, GgmlType::q6_k};

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// llama.cpp's use_more_bits: the layers of a stack that get the larger type in the _M mixes.
bool use_more_bits(int i, int n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

// llama.cpp's fallback for a row length a 256-element super-block does not divide.
GgmlType fit_row(GgmlType t, std::int64_t row) {
  if (row % kernels::block_elements(t) == 0) return t;
  switch (t) {
    case GgmlType::q4_k:
      return GgmlType::q5_0;
    case GgmlType::q5_k:
    case GgmlType::q6_k:
      return GgmlType::q8_0;
    default:
      break;
  }
  throw GgufError("row length " + std::to_string(row) + " is not a multiple of the " +
                  std::string(kernels::type_name(t)) + " block size");
}

bool is_block32_quant(GgmlType t) {
  return t == GgmlType::q4_0 || t == GgmlType::q4_1 || t == GgmlType::q5_0 || t == GgmlType::q8_0;
}

// llama.cpp's llama_ftype numbers for general.file_type.
std::uint32_t file_type(const QuantizeTarget& t) {
  if (t.mix == "Q4_K_M") return 15;
  switch (t.type) {
    case GgmlType::f32:
      return 0;
    case GgmlType::f16:
      return 1;
    case GgmlType::q4_0:
      return 2;
    case GgmlType::q4_1:
      return 3;
    case GgmlType::q8_0:
      return 7;
    case GgmlType::q5_0:
      return 8;
    case GgmlType::q4_k:
      return 14;  // Q4_K_S
    case GgmlType::q5_k:
      return 16;  // Q5_K_S
    case GgmlType::q6_k:
      return 18;
    case GgmlType::bf16:
      return 32;
    default:
      return 0;
  }
}

}  // namespace

QuantizeTarget parse_quantize_target(std::string_view name) {
  QuantizeTarget t;
  t.name = std::string(name);
  if (name == "Q4_K_M") {
    t.type = GgmlType::q4_k;
    t.mix = "Q4_K_M";
    return t;
  }
  std::string choices;
  for (GgmlType k : kTypes) {
    if (kernels::type_name(k) == name) {
      t.type = k;
      return t;
    }
    choices += std::string(kernels::type_name(k)) + " ";
  }
  throw std::invalid_argument("unknown quantization type '" + std::string(name) +
                              "' (one of: " + choices + "Q4_K_M)");
}

std::vector<TensorChoice> plan_quantization(const GgufFile& in, const QuantizeTarget& target) {
  const bool tied = in.find_tensor("output.weight") == nullptr;
  int n_layer = 0;
  for (const TensorInfo& t : in.tensors()) {
    if (ends_with(t.name, "ffn_down.weight")) ++n_layer;
  }
  int n_attn_v = 0;
  for (const TensorInfo& t : in.tensors()) n_attn_v += ends_with(t.name, "attn_v.weight") ? 1 : 0;
  int i_ffn_down = 0, i_attn_v = 0;
  std::vector<TensorChoice> plan;
  for (const TensorInfo& t : in.tensors()) {
    TensorChoice c{t.name, t.type, t.type};
    if (t.shape.size() >= 2) {
      GgmlType want = target.type;
      if (target.mix == "Q4_K_M") {
        const bool head = t.name == "output.weight" || (tied && t.name == "token_embd.weight");
        if (head) {
          want = GgmlType::q6_k;
        } else if (ends_with(t.name, "attn_v.weight")) {
          if (use_more_bits(i_attn_v, n_attn_v)) want = GgmlType::q6_k;
        } else if (ends_with(t.name, "ffn_down.weight")) {
          if (use_more_bits(i_ffn_down, n_layer)) want = GgmlType::q6_k;
        }
      }
      i_attn_v += ends_with(t.name, "attn_v.weight") ? 1 : 0;
      i_ffn_down += ends_with(t.name, "ffn_down.weight") ? 1 : 0;
      c.to = fit_row(want, t.row_length());
      if (c.to != want && target.keep_source_fallback && is_block32_quant(t.type) &&
          kernels::tensor_bytes(t.type, t.row_length()) <=
              kernels::tensor_bytes(c.to, t.row_length())) {
        c.to = t.type;
      }
      if (std::find(std::begin(kTypes), std::end(kTypes), t.type) == std::end(kTypes)) {
        throw GgufError("tensor " + t.name + " has type " +
                        std::string(kernels::type_name(t.type)) + ", which cannot be requantized");
      }
    }
    plan.push_back(std::move(c));
  }
  return plan;
}

GgufWriter requantize(const GgufFile& in, const QuantizeTarget& target, int threads) {
  const std::vector<TensorChoice> plan = plan_quantization(in, target);
  GgufWriter out(3);
  for (const auto& [key, value] : in.metadata()) out.set(key, value);
  out.set_u32("general.file_type", file_type(target));
  out.set_u32("general.quantization_version", 2);

  std::vector<std::vector<std::byte>> data(plan.size());
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto convert = [&](std::atomic<std::size_t>& cursor) {
    std::vector<float> row;
    for (std::size_t i = cursor++; i < plan.size(); i = cursor++) {
      const TensorInfo& t = in.tensors()[i];
      const TensorChoice& c = plan[i];
      if (c.to == c.from) {
        data[i].assign(t.data, t.data + t.bytes);
        continue;
      }
      // Row by row: the f32 copy of one row is all the extra memory a large tensor needs.
      const std::int64_t n = t.row_length();
      row.resize(static_cast<std::size_t>(n));
      const std::size_t in_row = kernels::tensor_bytes(c.from, n);
      const std::size_t out_row = kernels::tensor_bytes(c.to, n);
      data[i].resize(out_row * static_cast<std::size_t>(t.rows()));
      for (std::int64_t r = 0; r < t.rows(); ++r) {
        kernels::cpu::dequantize(c.from, t.data + static_cast<std::size_t>(r) * in_row, row.data(),
                                 n);
        std::byte* dst = data[i].data() + static_cast<std::size_t>(r) * out_row;
        if (c.to == GgmlType::q5_0) {
          kernels::cpu::kquant::quantize_q5_0_search(
              row.data(), reinterpret_cast<kernels::BlockQ5_0*>(dst), n / kernels::kQK4);
        } else {
          kernels::cpu::quantize(c.to, row.data(), dst, n);
        }
      }
    }
  };
  auto worker = [&] {
    try {
      convert(next);
    } catch (...) {
      const std::lock_guard lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next = plan.size();
    }
  };
  {
    std::vector<std::jthread> pool;
    for (int k = 1; k < std::max(1, threads); ++k) pool.emplace_back(worker);
    worker();
  }
  if (failure) std::rethrow_exception(failure);
  for (std::size_t i = 0; i < plan.size(); ++i) {
    const TensorInfo& t = in.tensors()[i];
    out.add_tensor(t.name, plan[i].to, t.shape, std::move(data[i]));
  }
  return out;
}

}  // namespace podworker::model
