// The tokenizer's round trips on the generated model's vocabulary (every byte has a token), the
// property tests/model/tokenizer_test.cpp states: any byte string survives decode(encode(s)), with
// and without special-token parsing; and any id sequence decodes to text that in turn survives
// encode and decode. The first input byte picks the mode.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "model/test_model.h"
#include "model/tokenizer.h"

using namespace podworker::model;

namespace {

const Tokenizer& tokenizer() {
  static const GgufFile file = GgufFile::from_bytes(build_test_model(TestModelSpec{}).to_bytes());
  static const Tokenizer tok = Tokenizer::from_gguf(file);
  return tok;
}

void require_round_trip(const Tokenizer& tok, const std::string& text, bool parse_special) {
  if (tok.decode(tok.encode(text, parse_special)) != text) {
    std::fprintf(stderr, "round trip failed (parse_special=%d) for %zu bytes\n",
                 parse_special ? 1 : 0, text.size());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const Tokenizer& tok = tokenizer();
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    const std::string text(rest);
    require_round_trip(tok, text, true);
    require_round_trip(tok, text, false);
    return 0;
  }
  // Ids, two bytes each, folded into the vocabulary (out-of-range ids are decode()'s documented
  // std::out_of_range, not what this target is after).
  std::vector<std::int32_t> ids;
  for (std::size_t i = 0; i + 1 < rest.size(); i += 2) {
    const auto v = static_cast<std::uint32_t>(static_cast<unsigned char>(rest[i])) |
                   static_cast<std::uint32_t>(static_cast<unsigned char>(rest[i + 1])) << 8;
    ids.push_back(static_cast<std::int32_t>(v % static_cast<std::uint32_t>(tok.vocab_size())));
  }
  const std::string text = tok.decode(ids);
  std::string joined;
  for (const std::int32_t id : ids) joined += tok.token_bytes(id);
  if (joined != text) std::abort();
  require_round_trip(tok, text, true);
  require_round_trip(tok, text, false);
  return 0;
}
