// GPT-2 style byte-level BPE tokenizer built from a GGUF file's `tokenizer.ggml.*` metadata, with
// the `smollm` pre-tokenizer (digits one by one, then GPT-2's split pattern) and ChatML.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/gguf.h"
#include "model/pretokenizer.h"

namespace podworker::model {

// GGUF `tokenizer.ggml.token_type` values (llama.cpp's numbering).
enum class TokenType : std::int32_t {
  undefined = 0,
  normal = 1,
  unknown = 2,
  control = 3,
  user_defined = 4,
  unused = 5,
  byte = 6,
};

class Tokenizer {
 public:
  // Throws GgufError when the tokenizer model is not "gpt2", the pre-tokenizer is not one this
  // class implements ("smollm", or absent/"default"), or the vocabulary is inconsistent.
  static Tokenizer from_gguf(const GgufFile& file);

  // No BOS is added (SmolLM2's GGUF sets add_bos_token false). With parse_special, the text of
  // control and user-defined tokens (e.g. "<|im_start|>") becomes that token instead of being
  // split into bytes.
  std::vector<std::int32_t> encode(std::string_view text, bool parse_special = true) const;
  // Concatenation of token_bytes(); throws std::out_of_range for an id outside the vocabulary.
  std::string decode(std::span<const std::int32_t> ids) const;
  // Raw bytes one token stands for (byte-level decoded; special tokens give their text). A token
  // may end in the middle of a UTF-8 sequence: streaming callers buffer incomplete sequences.
  std::string token_bytes(std::int32_t id) const;
  // The vocabulary's own spelling (GPT-2 byte-to-unicode form, e.g. "Ġthe").
  const std::string& token_text(std::int32_t id) const;

  std::int32_t bos_id() const { return bos_id_; }
  std::int32_t eos_id() const { return eos_id_; }
  std::optional<std::int32_t> pad_id() const { return pad_id_; }
  std::int32_t vocab_size() const { return static_cast<std::int32_t>(tokens_.size()); }
  TokenType token_type(std::int32_t id) const;
  bool is_special(std::int32_t id) const;  // control or user-defined
  bool is_eog(std::int32_t id) const;      // ends generation: eos, eot, or <|im_end|>/<|endoftext|>
  std::optional<std::int32_t> find_token(std::string_view text) const;

  struct Message {
    std::string role, content;
  };
  // ChatML: "<|im_start|>role\ncontent<|im_end|>\n" per message, then "<|im_start|>assistant\n".
  // With `default_system` non-empty and no leading system message, that system message comes first
  // (SmolLM2's own Jinja template does this with "You are a helpful AI assistant named SmolLM,
  // trained by Hugging Face"; llama.cpp's built-in chatml does not).
  static std::string apply_chat_template(std::span<const Message> messages,
                                         bool add_generation_prompt = true,
                                         std::string_view default_system = {});

 private:
  struct PairHash {
    std::size_t operator()(std::uint64_t v) const noexcept { return std::hash<std::uint64_t>{}(v * 0x9E3779B97F4A7C15ull); }
  };
  void bpe_word(std::string_view word, std::vector<std::int32_t>& out) const;
  void encode_plain(std::string_view text, std::vector<std::int32_t>& out) const;

  PreTokenizer pre_ = PreTokenizer::smollm;
  std::vector<std::string> tokens_;
  std::vector<std::string> token_bytes_;  // byte-level decoded
  std::vector<TokenType> types_;
  std::unordered_map<std::string, std::int32_t> token_ids_;
  // Merge rank keyed by the two token ids (left << 32 | right); value: rank and merged token id.
  struct Merge {
    std::int32_t rank;
    std::int32_t result;
  };
  std::unordered_map<std::uint64_t, Merge, PairHash> merges_;
  std::int32_t byte_token_[256] = {};  // token id of each single byte, -1 when it has none
  std::vector<std::int32_t> specials_;  // control/user-defined tokens, longest text first
  std::vector<std::int32_t> eog_ids_;
  std::int32_t bos_id_ = -1;
  std::int32_t eos_id_ = -1;
  std::optional<std::int32_t> pad_id_;
};

}  // namespace podworker::model
