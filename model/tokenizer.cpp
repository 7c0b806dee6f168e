// Byte-level BPE as GPT-2 defined it and llama.cpp runs it for `tokenizer.ggml.model = gpt2`:
// special-token partitioning, pre-tokenization, then per word the lowest-ranked adjacent merge is
// applied first (leftmost on ties) until none applies. Words are merged with a heap over adjacent
// pairs keyed by token ids, so a long word costs O(n log n), not a rescan per merge.
#include "model/tokenizer.h"

#include <algorithm>
#include <queue>
#include <stdexcept>

#include "model/unicode.h"

namespace podworker::model {

namespace {

// GPT-2's bytes_to_unicode: printable bytes stand for themselves, the other 68 bytes map to
// U+0100 upwards in byte order, so every byte has a visible, non-space spelling.
struct ByteMap {
  char32_t byte_to_cp[256];
  ByteMap() {
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      byte_to_cp[b] = printable ? static_cast<char32_t>(b) : next++;
    }
  }
  // -1 when `cp` is not the spelling of a byte.
  int cp_to_byte(char32_t cp) const {
    if (cp < 256) {
      return byte_to_cp[cp] == cp ? static_cast<int>(cp) : -1;
    }
    for (int b = 0; b < 256; ++b) {
      if (byte_to_cp[b] == cp) return b;
    }
    return -1;
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// The raw bytes a byte-level token spells; code points that spell no byte are kept as UTF-8.
std::string byte_level_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const ByteMap& m = byte_map();
  for (std::size_t pos = 0; pos < text.size();) {
    const auto d = unicode::decode_utf8(text, pos);
    const int b = d.cp == unicode::kInvalid ? -1 : m.cp_to_byte(d.cp);
    if (b >= 0) {
      out += static_cast<char>(b);
    } else {
      out.append(text.substr(pos, d.size));
    }
    pos += d.size;
  }
  return out;
}

std::uint64_t pair_key(std::int32_t left, std::int32_t right) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const GgufFile& file) {
  Tokenizer t;
  const std::string model = file.get_string("tokenizer.ggml.model");
  if (model != "gpt2") throw GgufError("tokenizer model '" + model + "' is not supported (only gpt2 byte-level BPE)");
  const std::string pre = file.get_string_or("tokenizer.ggml.pre", "default");
  if (pre == "smollm") {
    t.pre_ = PreTokenizer::smollm;
  } else if (pre == "default" || pre == "gpt2") {
    t.pre_ = PreTokenizer::gpt2;
  } else {
    throw GgufError("pre-tokenizer '" + pre + "' is not supported (smollm, gpt2, default)");
  }

  t.tokens_ = file.get_string_array("tokenizer.ggml.tokens");
  const auto n = t.tokens_.size();
  if (n == 0 || n > 0x7FFFFFFF) throw GgufError("tokenizer.ggml.tokens has " + std::to_string(n) + " tokens");
  t.types_.assign(n, TokenType::normal);
  if (file.find("tokenizer.ggml.token_type")) {
    const auto types = file.get_int_array("tokenizer.ggml.token_type");
    if (types.size() != n) {
      throw GgufError("tokenizer.ggml.token_type has " + std::to_string(types.size()) + " entries for " +
                      std::to_string(n) + " tokens");
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (types[i] < 0 || types[i] > static_cast<std::int32_t>(TokenType::byte)) {
        throw GgufError("token " + std::to_string(i) + " has unknown token type " + std::to_string(types[i]));
      }
      t.types_[i] = static_cast<TokenType>(types[i]);
    }
  }

  t.token_bytes_.resize(n);
  t.token_ids_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto id = static_cast<std::int32_t>(i);
    t.token_ids_[t.tokens_[i]] = id;
    const bool special = t.types_[i] == TokenType::control || t.types_[i] == TokenType::user_defined;
    t.token_bytes_[i] = special ? t.tokens_[i] : byte_level_decode(t.tokens_[i]);
    if (special && !t.tokens_[i].empty()) t.specials_.push_back(id);
  }
  // Longest first, so a special token containing another one wins (llama.cpp's order).
  std::stable_sort(t.specials_.begin(), t.specials_.end(), [&](std::int32_t a, std::int32_t b) {
    return t.tokens_[static_cast<std::size_t>(a)].size() > t.tokens_[static_cast<std::size_t>(b)].size();
  });

  const ByteMap& m = byte_map();
  for (int b = 0; b < 256; ++b) {
    std::string spelling;
    append_utf8(spelling, m.byte_to_cp[b]);
    // SmolLM2's vocabulary lacks 21 bytes (a few control characters and bytes that never occur in
    // UTF-8 text); like llama.cpp and HF tokenizers, a byte without a token is dropped.
    const auto it = t.token_ids_.find(spelling);
    t.byte_token_[b] = it == t.token_ids_.end() ? -1 : it->second;
  }

  const auto merges = file.get_string_array("tokenizer.ggml.merges");
  t.merges_.reserve(merges.size());
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& merge = merges[rank];
    const auto space = merge.find(' ', 1);
    if (space == std::string::npos) throw GgufError("merge " + std::to_string(rank) + " '" + merge + "' has no space");
    const std::string left = merge.substr(0, space);
    const std::string right = merge.substr(space + 1);
    const auto l = t.token_ids_.find(left);
    const auto r = t.token_ids_.find(right);
    const auto result = t.token_ids_.find(left + right);
    // A merge whose parts are not tokens can never fire on token ids; HF tokenizers rejects such
    // vocabularies, we ignore the merge.
    if (l == t.token_ids_.end() || r == t.token_ids_.end() || result == t.token_ids_.end()) continue;
    t.merges_.try_emplace(pair_key(l->second, r->second), Merge{static_cast<std::int32_t>(rank), result->second});
  }

  auto optional_id = [&](const char* key) -> std::optional<std::int32_t> {
    if (!file.find(key)) return std::nullopt;
    const auto id = file.get_int(key);
    if (id < 0 || static_cast<std::uint64_t>(id) >= n) {
      throw GgufError(std::string(key) + " " + std::to_string(id) + " is outside the vocabulary");
    }
    return static_cast<std::int32_t>(id);
  };
  t.bos_id_ = optional_id("tokenizer.ggml.bos_token_id").value_or(-1);
  t.eos_id_ = optional_id("tokenizer.ggml.eos_token_id").value_or(-1);
  t.pad_id_ = optional_id("tokenizer.ggml.padding_token_id");
  if (t.eos_id_ >= 0) t.eog_ids_.push_back(t.eos_id_);
  if (auto eot = optional_id("tokenizer.ggml.eot_token_id")) t.eog_ids_.push_back(*eot);
  // llama.cpp also ends generation on these well-known end-of-turn spellings.
  for (const char* text : {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"}) {
    const auto it = t.token_ids_.find(text);
    if (it != t.token_ids_.end() && t.is_special(it->second)) t.eog_ids_.push_back(it->second);
  }
  std::sort(t.eog_ids_.begin(), t.eog_ids_.end());
  t.eog_ids_.erase(std::unique(t.eog_ids_.begin(), t.eog_ids_.end()), t.eog_ids_.end());
  return t;
}

void Tokenizer::bpe_word(std::string_view word, std::vector<std::int32_t>& out) const {
  const std::size_t n = word.size();
  if (n == 1) {
    const std::int32_t id = byte_token_[static_cast<unsigned char>(word[0])];
    if (id >= 0) out.push_back(id);
    return;
  }
  // Symbols form a doubly linked list over the word's bytes; a merged symbol keeps its left index.
  std::vector<std::int32_t> ids(n);
  std::vector<std::int32_t> prev(n);
  std::vector<std::int32_t> next(n);
  for (std::size_t i = 0; i < n; ++i) {
    ids[i] = byte_token_[static_cast<unsigned char>(word[i])];
    prev[i] = static_cast<std::int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<std::int32_t>(i + 1) : -1;
  }
  struct Candidate {
    std::int32_t rank, left, left_id, right_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto consider = [&](std::int32_t left) {
    if (left < 0) return;
    const std::int32_t right = next[static_cast<std::size_t>(left)];
    if (right < 0) return;
    const auto it = merges_.find(pair_key(ids[static_cast<std::size_t>(left)], ids[static_cast<std::size_t>(right)]));
    if (it != merges_.end()) {
      heap.push({it->second.rank, left, ids[static_cast<std::size_t>(left)], ids[static_cast<std::size_t>(right)]});
    }
  };
  for (std::size_t i = 0; i + 1 < n; ++i) consider(static_cast<std::int32_t>(i));

  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const auto l = static_cast<std::size_t>(c.left);
    const std::int32_t r = next[l];
    // Stale entries: either side changed since the pair was pushed.
    if (ids[l] != c.left_id || r < 0 || ids[static_cast<std::size_t>(r)] != c.right_id) continue;
    ids[l] = merges_.at(pair_key(c.left_id, c.right_id)).result;
    ids[static_cast<std::size_t>(r)] = -1;  // dead
    const std::int32_t rr = next[static_cast<std::size_t>(r)];
    next[l] = rr;
    if (rr >= 0) prev[static_cast<std::size_t>(rr)] = c.left;
    consider(prev[l]);
    consider(c.left);
  }
  for (std::int32_t i = 0; i >= 0; i = next[static_cast<std::size_t>(i)]) {
    if (ids[static_cast<std::size_t>(i)] >= 0) out.push_back(ids[static_cast<std::size_t>(i)]);
  }
}

void Tokenizer::encode_plain(std::string_view text, std::vector<std::int32_t>& out) const {
  std::vector<std::string_view> pieces;
  pretokenize(pre_, text, pieces);
  for (auto piece : pieces) bpe_word(piece, out);
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  // Fragments are either raw text (id -1) or one special token, split longest special first.
  struct Fragment {
    std::int32_t id;
    std::string_view text;
  };
  std::vector<Fragment> fragments{{-1, text}};
  for (const std::int32_t special : specials_) {
    // Without parse_special, control tokens stay text; user-defined ones are still matched (as
    // llama.cpp and HF tokenizers do for added non-special tokens).
    if (!parse_special && types_[static_cast<std::size_t>(special)] != TokenType::user_defined) continue;
    const std::string& s = tokens_[static_cast<std::size_t>(special)];
    std::vector<Fragment> next;
    next.reserve(fragments.size());
    for (const Fragment& f : fragments) {
      if (f.id >= 0) {
        next.push_back(f);
        continue;
      }
      std::size_t start = 0;
      for (std::size_t hit; (hit = f.text.find(s, start)) != std::string_view::npos; start = hit + s.size()) {
        if (hit > start) next.push_back({-1, f.text.substr(start, hit - start)});
        next.push_back({special, f.text.substr(hit, s.size())});
      }
      if (start < f.text.size()) next.push_back({-1, f.text.substr(start)});
    }
    fragments = std::move(next);
  }
  std::vector<std::int32_t> out;
  out.reserve(text.size() / 3 + 4);
  for (const Fragment& f : fragments) {
    if (f.id >= 0) {
      out.push_back(f.id);
    } else {
      encode_plain(f.text, out);
    }
  }
  return out;
}

std::string Tokenizer::token_bytes(std::int32_t id) const {
  if (id < 0 || id >= vocab_size()) throw std::out_of_range("token id " + std::to_string(id) + " outside the vocabulary");
  return token_bytes_[static_cast<std::size_t>(id)];
}

const std::string& Tokenizer::token_text(std::int32_t id) const {
  if (id < 0 || id >= vocab_size()) throw std::out_of_range("token id " + std::to_string(id) + " outside the vocabulary");
  return tokens_[static_cast<std::size_t>(id)];
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids) const {
  std::string out;
  for (const std::int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) throw std::out_of_range("token id " + std::to_string(id) + " outside the vocabulary");
    out += token_bytes_[static_cast<std::size_t>(id)];
  }
  return out;
}

TokenType Tokenizer::token_type(std::int32_t id) const {
  if (id < 0 || id >= vocab_size()) throw std::out_of_range("token id " + std::to_string(id) + " outside the vocabulary");
  return types_[static_cast<std::size_t>(id)];
}

bool Tokenizer::is_special(std::int32_t id) const {
  const TokenType t = token_type(id);
  return t == TokenType::control || t == TokenType::user_defined;
}

bool Tokenizer::is_eog(std::int32_t id) const { return std::binary_search(eog_ids_.begin(), eog_ids_.end(), id); }

std::optional<std::int32_t> Tokenizer::find_token(std::string_view text) const {
  const auto it = token_ids_.find(std::string(text));
  if (it == token_ids_.end()) return std::nullopt;
  return it->second;
}

std::string Tokenizer::apply_chat_template(std::span<const Message> messages, bool add_generation_prompt,
                                           std::string_view default_system) {
  std::string out;
  if (!default_system.empty() && (messages.empty() || messages.front().role != "system")) {
    out += "<|im_start|>system\n";
    out += default_system;
    out += "<|im_end|>\n";
  }
  for (const Message& m : messages) {
    out += "<|im_start|>";
    out += m.role;
    out += '\n';
    out += m.content;
    out += "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace podworker::model
