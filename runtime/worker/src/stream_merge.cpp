#include "stream_merge.h"

#include <algorithm>

#include "stream_split.h"

namespace podworker::worker {

std::vector<std::string> merged_bodies(std::span<const json::Value* const> chunks,
                                       const Handler& rule, std::size_t max_bytes) {
  std::vector<std::string> bodies;
  std::size_t i = 0;
  while (i < chunks.size()) {
    if (chunks[i]->IsString()) {
      // std::string appends are amortized linear, however many small strings the run holds.
      std::string text;
      for (; i < chunks.size() && chunks[i]->IsString(); ++i) {
        text.append(chunks[i]->GetString(), chunks[i]->GetStringLength());
      }
      if (json_string_size(text) + kOutputEnvelopeBytes <= max_bytes) {
        bodies.push_back(text_body(text));
      } else {
        for (std::string_view piece : split_text(text, max_bytes))
          bodies.push_back(text_body(piece));
      }
      continue;
    }
    std::size_t run = i;
    while (run < chunks.size() && !chunks[run]->IsString()) ++run;
    std::size_t offered = run - i;
    bool merged_one = false;
    while (offered >= 2) {
      json::Document merged;
      const std::size_t taken =
          std::min(rule.merge_chunks(chunks.subspan(i, offered), merged), offered);
      if (taken < 2) break;
      std::string body = "{\"output\":" + json::to_string(merged) + "}";
      if (body.size() <= max_bytes) {
        bodies.push_back(std::move(body));
        i += taken;
        merged_one = true;
        break;
      }
      offered = taken / 2;  // too big merged: offer half of what it took
    }
    if (merged_one) continue;
    for (auto& body : chunk_bodies(*chunks[i], max_bytes)) bodies.push_back(std::move(body));
    ++i;
  }
  return bodies;
}

}  // namespace podworker::worker
