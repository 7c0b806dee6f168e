// Pre-tokenization: splitting text into the words byte-level BPE merges within.
#pragma once

#include <string_view>
#include <vector>

namespace podworker::model {

enum class PreTokenizer {
  gpt2,    // GPT-2's pattern: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  smollm,  // llama.cpp's `smollm`: every \p{N} code point alone first, then GPT-2's pattern
};

// Appends the pieces of `text` (views into it, in order, covering it exactly) to `pieces`.
void pretokenize(PreTokenizer kind, std::string_view text, std::vector<std::string_view>& pieces);

}  // namespace podworker::model
