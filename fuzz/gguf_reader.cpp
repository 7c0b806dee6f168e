// The GGUF reader on arbitrary bytes: it must either reject the file with a GgufError or hand back
// metadata and tensors that lie wholly inside the file (ASan checks every tensor's first and last
// byte). A file the reader accepts also goes to the tokenizer, which builds its vocabulary from the
// same untrusted metadata.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <vector>

#include "model/gguf.h"
#include "model/tokenizer.h"

using namespace podworker::model;

namespace {
volatile std::byte g_sink;  // keeps the probing reads of tensor data from being optimised away
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  std::optional<GgufFile> file;
  try {
    file.emplace(GgufFile::from_bytes(std::vector<std::byte>(bytes, bytes + size)));
  } catch (const GgufError&) {
    return 0;
  }
  for (const auto& [key, value] : file->metadata()) {
    if (key.empty() && value.describe().empty()) std::abort();  // describe() walks nested arrays
  }
  for (const TensorInfo& t : file->tensors()) {
    if (t.bytes != tensor_bytes(t.type, t.shape)) std::abort();
    if (t.bytes == 0) continue;
    if (t.data == nullptr) std::abort();
    g_sink = t.data[0];
    g_sink = t.data[t.bytes - 1];
  }
  try {
    const Tokenizer tok = Tokenizer::from_gguf(*file);
    const auto ids = tok.encode("<|im_start|>user\nHello, world 123<|im_end|>\n");
    (void)tok.decode(ids);
  } catch (const GgufError&) {
  }
  return 0;
}
