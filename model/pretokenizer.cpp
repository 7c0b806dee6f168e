// The GPT-2 split pattern implemented as a hand-written scanner over code points (a regex engine
// with \p{..} classes and look-ahead is not in the standard library, and this is much faster).
// Alternatives are tried in the pattern's order at each position, each matching greedily, which is
// what the regex does since none of them needs backtracking beyond what is coded below.
#include "model/pretokenizer.h"

#include "model/unicode.h"

namespace podworker::model {

namespace {

using unicode::CharClass;

struct Cp {
  char32_t cp;
  CharClass cls;
  std::size_t offset;  // byte offset in the text
};

// Splits code points [begin, end) with GPT-2's pattern; `end` acts as end of input (the
// pattern's look-ahead does not see past a fragment, as in llama.cpp and HF tokenizers).
void split_gpt2(const std::vector<Cp>& cps, std::size_t begin, std::size_t end, std::string_view text,
                std::size_t text_end, std::vector<std::string_view>& pieces) {
  auto offset_of = [&](std::size_t i) { return i < cps.size() ? cps[i].offset : text_end; };
  auto cls_at = [&](std::size_t i) { return i < end ? cps[i].cls : CharClass::whitespace; };
  auto cp_at = [&](std::size_t i) { return i < end ? cps[i].cp : char32_t{0}; };

  std::size_t i = begin;
  while (i < end) {
    std::size_t j = i;  // end of the match
    const char32_t c = cps[i].cp;
    if (c == U'\'' && i + 1 < end) {
      const char32_t n1 = cp_at(i + 1);
      const char32_t n2 = cp_at(i + 2);  // 0 past the end
      if (n1 == U's' || n1 == U't' || n1 == U'm' || n1 == U'd') {
        j = i + 2;
      } else if ((n1 == U'r' && n2 == U'e') || (n1 == U'v' && n2 == U'e') || (n1 == U'l' && n2 == U'l')) {
        j = i + 3;
      }
    }
    if (j == i) {
      // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional U+0020, then a run of one class.
      const std::size_t k = (c == U' ' && i + 1 < end) ? i + 1 : i;
      const CharClass cls = cls_at(k);
      if (cls != CharClass::whitespace) {
        j = k;
        while (j < end && cps[j].cls == cls) ++j;
      }
    }
    if (j == i) {
      // `\s+(?!\S)` then `\s+`: a whitespace run stops one short of a following non-space, so
      // that space can lead the next word; a lone whitespace before a non-space is matched alone.
      std::size_t k = i;
      while (k < end && cps[k].cls == CharClass::whitespace) ++k;
      j = (k < end && k - i > 1) ? k - 1 : k;
    }
    pieces.emplace_back(text.substr(cps[i].offset, offset_of(j) - cps[i].offset));
    i = j;
  }
}

}  // namespace

void pretokenize(PreTokenizer kind, std::string_view text, std::vector<std::string_view>& pieces) {
  std::vector<Cp> cps;
  cps.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size();) {
    const auto d = unicode::decode_utf8(text, pos);
    cps.push_back({d.cp, unicode::char_class(d.cp), pos});
    pos += d.size;
  }
  if (kind == PreTokenizer::gpt2) {
    split_gpt2(cps, 0, cps.size(), text, text.size(), pieces);
    return;
  }
  // smollm: each number code point is a piece of its own; the text between them is split by GPT-2.
  std::size_t start = 0;
  for (std::size_t i = 0; i < cps.size(); ++i) {
    if (cps[i].cls != CharClass::number) continue;
    if (start < i) split_gpt2(cps, start, i, text, text.size(), pieces);
    const std::size_t next = i + 1 < cps.size() ? cps[i + 1].offset : text.size();
    pieces.emplace_back(text.substr(cps[i].offset, next - cps[i].offset));
    start = i + 1;
  }
  if (start < cps.size()) split_gpt2(cps, start, cps.size(), text, text.size(), pieces);
}

}  // namespace podworker::model
