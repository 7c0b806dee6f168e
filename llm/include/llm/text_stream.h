// Turns a stream of token bytes into text deltas that are safe to show: never a partial UTF-8
// character, never the start of a stop string that may still complete.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace podworker::llm {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop = {});

  // Adds one token's bytes; returns the text that can be emitted now. Once a stop string appears,
  // stopped() is true and the text before it is the last thing returned (the stop string is not).
  std::string push(std::string_view bytes);
  // End of generation: returns what was held back; an incomplete UTF-8 tail becomes U+FFFD.
  std::string finish();
  bool stopped() const { return stopped_; }
  const std::string& text() const { return emitted_; }  // everything returned so far

 private:
  std::vector<std::string> stop_;
  std::string pending_;  // received, not yet emitted
  std::string emitted_;
  bool stopped_ = false;
};

// Length of the longest prefix of `s` that ends on a complete UTF-8 character boundary.
std::size_t utf8_complete_prefix(std::string_view s);

}  // namespace podworker::llm
