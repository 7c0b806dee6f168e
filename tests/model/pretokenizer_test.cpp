// The smollm / GPT-2 split pattern, case by case (expected pieces worked out from the regex).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "model/pretokenizer.h"
#include "model/unicode.h"

using namespace podworker::model;

namespace {

std::vector<std::string> split(std::string_view text, PreTokenizer kind = PreTokenizer::smollm) {
  std::vector<std::string_view> pieces;
  pretokenize(kind, text, pieces);
  return {pieces.begin(), pieces.end()};
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("smollm pre-tokenizer splits like its regexes") {
  CHECK(split("Hello world") == V{"Hello", " world"});
  CHECK(split("a  b") == V{"a", " ", " b"});
  CHECK(split("a\n\nb") == V{"a", "\n", "\n", "b"});
  CHECK(split("a \n b") == V{"a", " \n", " b"});
  CHECK(split("x   ") == V{"x", "   "});
  CHECK(split("   x") == V{"  ", " x"});
  CHECK(split("\tx") == V{"\t", "x"});
  CHECK(split("12345") == V{"1", "2", "3", "4", "5"});
  CHECK(split("abc123def") == V{"abc", "1", "2", "3", "def"});
  CHECK(split("a 1") == V{"a", " ", "1"});
  CHECK(split("it's") == V{"it", "'s"});
  CHECK(split("we'll they've I'm you'd we're") == V{"we", "'ll", " they", "'ve", " I", "'m", " you", "'d", " we", "'re"});
  CHECK(split("IT'S") == V{"IT", "'", "S"});
  CHECK(split("'tis") == V{"'t", "is"});
  CHECK(split("hi!!! ok") == V{"hi", "!!!", " ok"});
  CHECK(split("!'s") == V{"!'", "s"});
  CHECK(split("(x)") == V{"(", "x", ")"});
  CHECK(split("日本語 テキスト") == V{"日本語", " テキスト"});
  CHECK(split("café") == V{"café"});
  CHECK(split("😀👍 🚀") == V{"😀👍", " 🚀"});
  CHECK(split("a\u00a0b") == V{"a", "\u00a0", "b"});  // NBSP is whitespace but not U+0020
  CHECK(split("x ½") == V{"x", " ", "½"});            // ½ is \p{N} (No): split alone first
  CHECK(split("\xff\xfe a") == V{"\xff\xfe", " a"});  // invalid UTF-8 bytes are `other`
  CHECK(split("").empty());
}

TEST_CASE("gpt2 pre-tokenizer keeps digit runs together") {
  CHECK(split("abc 12345", PreTokenizer::gpt2) == V{"abc", " 12345"});
  CHECK(split("12345", PreTokenizer::gpt2) == V{"12345"});
}

TEST_CASE("UTF-8 decoding marks every invalid byte") {
  using unicode::decode_utf8;
  using unicode::kInvalid;
  CHECK(decode_utf8("\xc3\xa9", 0).cp == U'é');
  CHECK(decode_utf8("\xf0\x9f\x98\x80", 0).cp == U'😀');
  CHECK(decode_utf8("\xf0\x9f\x98\x80", 0).size == 4);
  CHECK(decode_utf8("\xc0\x80", 0).cp == kInvalid);  // overlong
  CHECK(decode_utf8("\xed\xa0\x80", 0).cp == kInvalid);  // surrogate
  CHECK(decode_utf8("\xf4\x90\x80\x80", 0).cp == kInvalid);  // above U+10FFFF
  CHECK(decode_utf8("\xe6\x97", 0).cp == kInvalid);  // truncated
  CHECK(decode_utf8("\xe6\x97", 0).size == 1);
  CHECK(unicode::is_letter(U'ß'));
  CHECK(unicode::is_letter(U'日'));
  CHECK_FALSE(unicode::is_letter(U'1'));
  CHECK(unicode::is_number(U'٣'));
  CHECK(unicode::is_number(U'Ⅻ'));
  CHECK(unicode::is_whitespace(U'\u3000'));
  CHECK_FALSE(unicode::is_whitespace(U'\u200b'));
}
