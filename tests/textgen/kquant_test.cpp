// The real SmolLM2 file requantized to the Q4_K_M mix (llama.cpp's types) answering the pinned
// prompt (the K-quant and Q5_0 products themselves are checked per type and shape in tests/ops).
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "llm/generator.h"
#include "model/quantize.h"
#include "model/tokenizer.h"

using namespace podworker;
TEST_CASE("real model: the Q4_K_M requantization answers the pinned prompt") {
  const std::string path = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  std::string found;
  for (const char* prefix : {"", "../", "../../", "../../../"}) {
    if (std::filesystem::exists(std::string(prefix) + path)) found = std::string(prefix) + path;
  }
  if (const char* env = std::getenv("PODWORKER_MODEL"); env && std::filesystem::exists(env))
    found = env;
  if (found.empty()) {
    MESSAGE("skipped: " << path << " is absent (scripts/fetch-model.sh downloads it)");
    return;
  }
  const std::filesystem::path out =
      std::filesystem::temp_directory_path() / "podworker-test-smollm2-q4_k_m.gguf";
  // llama.cpp's fallback types, so the 576-wide matrices run as Q5_0 and attn_v as Q8_0 besides the
  // Q4_K / Q6_K ffn_down (by default the Q4_1 source would keep its type there).
  model::QuantizeTarget target = model::parse_quantize_target("Q4_K_M");
  target.keep_source_fallback = false;
  model::requantize(model::GgufFile::open(found), target, 2).write(out.string());
  llm::BackendOptions o;
  o.threads = 2;
  o.max_sequences = 1;
  o.max_context = 256;
  auto g = llm::Generator::load(out.string(), llm::BackendKind::cpu, o);
  const std::vector<model::Tokenizer::Message> msgs = {{"user", "What is the capital of France?"}};
  llm::TextRequest r;
  r.prompt = g->tokenizer().encode(model::Tokenizer::apply_chat_template(msgs));
  r.max_tokens = 24;
  const llm::TextResult res = g->generate_text(r, {});
  MESSAGE("generated: " << res.text);
  CHECK(res.text.find("Paris") != std::string::npos);
  std::filesystem::remove(out);
}
