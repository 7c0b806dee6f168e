// Your worker: edit this file. One handler, registered as "my_handler" and run by default, so the
// image needs no PODWORKER_HANDLER. See docs/handlers.md for the whole handler API.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

#include "podworker/handler.h"
#include "podworker/worker.h"

namespace {

using namespace podworker;

class MyHandler final : public Handler {
 public:
  // Settings: --set lowercase=true, PODWORKER_MY_HANDLER_LOWERCASE=true, or --config FILE.
  std::vector<Setting> settings() const override {
    return {{.name = "lowercase",
             .type = SettingType::boolean,
             .default_value = "false",
             .help = "lower-case the words"}};
  }

  // Once, before the first job: load models here. The context holds the settings, checked.
  void init(const HandlerContext& context) override {
    lowercase_ = context.settings.get_bool("lowercase");
    log_ = context.log;
    log_.info(std::string("ready, lowercase ") + (lowercase_ ? "on" : "off"));
  }

  // Per job: {"text": string, "max_words": integer >= 1, "stream": bool}. Returns
  // {"words": [...], "count": n}; with "stream": true it also yields each word as it goes, and the
  // returned object is the job's final summary.
  Output execute(Job& job, Emitter& out) override {
    const InputReader in(job.input());  // a bad field fails the job with a message naming it
    const std::string_view text = in.required_string("text");
    const auto max_words = in.integer("max_words", 100, 1);
    const bool stream = in.boolean("stream", false);

    json::Document result(rapidjson::kObjectType);
    auto& a = result.GetAllocator();
    json::Value words(rapidjson::kArrayType);
    std::size_t pos = 0;
    while (pos < text.size() && static_cast<std::int64_t>(words.Size()) < max_words) {
      if (job.cancelled()) return {};  // cancelled, timed out or shutting down: nothing is posted
      const std::size_t end = std::min(text.find(' ', pos), text.size());
      std::string word(text.substr(pos, end - pos));
      pos = end + 1;
      if (word.empty()) continue;
      if (lowercase_) {
        for (char& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      if (stream) out.yield(word);
      words.PushBack(json::string_value(word, a), a);
    }
    log_.debug("split into " + std::to_string(words.Size()) + " words", job.id());
    const auto count = words.Size();
    result.AddMember("words", words, a);
    result.AddMember("count", count, a);
    return Output::ok(std::move(result));
  }

 private:
  bool lowercase_ = false;
  Logger log_;
};

}  // namespace

int main(int argc, char** argv) {
  podworker::HandlerRegistry::global().add<MyHandler>("my_handler");
  return podworker::worker_main(argc, argv, {.default_handler = "my_handler"});
}
