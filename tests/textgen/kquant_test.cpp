// The real SmolLM2 file requantized to the Q4_K_M mix (llama.cpp's types) answering the pinned
// prompt (the K-quant and Q5_0 products themselves are checked per type and shape in tests/ops).
#include <doctest/doctest.h>

#include <vector>

#include "llm/generator.h"
#include "model/tokenizer.h"
#include "test_model_fixture.h"

using namespace podworker;
TEST_CASE("real model: the Q4_K_M requantization answers the pinned prompt") {
  const std::string found = testing::real_model_path();
  if (found.empty()) {
    MESSAGE(
        "skipped: models/SmolLM2-135M-Instruct.Q4_1.gguf is absent (scripts/fetch-model.sh "
        "downloads it)");
    return;
  }
  // llama.cpp's fallback types, so the 576-wide matrices run as Q5_0 and attn_v as Q8_0 besides the
  // Q4_K / Q6_K ffn_down (by default the Q4_1 source would keep its type there).
  const std::string out = testing::requantized_real_model(false);
  llm::BackendOptions o;
  o.threads = 2;
  o.max_sequences = 1;
  o.max_context = 256;
  auto g = llm::Generator::load(out, llm::BackendKind::cpu, o);
  const std::vector<model::Tokenizer::Message> msgs = {{"user", "What is the capital of France?"}};
  llm::TextRequest r;
  r.prompt = g->tokenizer().encode(model::Tokenizer::apply_chat_template(msgs));
  r.max_tokens = 24;
  const llm::TextResult res = g->generate_text(r, {});
  MESSAGE("generated: " << res.text);
  CHECK(res.text.find("Paris") != std::string::npos);
}
