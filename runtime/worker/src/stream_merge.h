// How the chunks yielded while a post was in flight become the next posts (docs/handlers.md,
// "Streaming over a slow network").
//
// Chunks keep their order. A run of successive strings is concatenated, then split into posts of
// at most max_bytes (never inside a UTF-8 sequence), so the client's concatenation is unchanged.
// Other chunks go through the handler's merge_chunks hook: a run it merges becomes one post when
// that post fits, else the run is halved and offered again; a chunk merged with nothing is posted
// as yield alone would post it (split when it is an array over the limit).
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "podworker/handler.h"

namespace podworker::worker {

// The post bodies for `chunks`, each at most max_bytes. Throws ChunkTooLarge (stream_split.h)
// for a chunk that cannot be split, and whatever the handler's hook throws.
std::vector<std::string> merged_bodies(std::span<const json::Value* const> chunks,
                                       const Handler& rule, std::size_t max_bytes);

}  // namespace podworker::worker
