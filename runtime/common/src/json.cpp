#include "podworker/json.h"

#include <cmath>
#include <cstdint>

#include "podworker/utf8.h"

namespace podworker::json {

namespace {

using rapidjson::SizeType;

// Sits between RapidJSON's reader and the Document it fills: counts nesting, refuses (or, when
// pruning, skips) containers past the limit, and checks every string and key is valid UTF-8 once
// escapes are decoded — the reader's own check sees only raw bytes, so "\udc00" (a lone low
// surrogate, which RapidJSON decodes into bytes no UTF-8 decoder accepts) would pass it.
class GuardedHandler {
 public:
  GuardedHandler(Document& doc, std::size_t max_depth, std::vector<std::size_t>* pruned)
      : doc_(doc), max_depth_(max_depth), pruned_(pruned) {}

  bool Null() { return skipping() || (element() && doc_.Null()); }
  bool Bool(bool b) { return skipping() || (element() && doc_.Bool(b)); }
  bool Int(int i) { return skipping() || (element() && doc_.Int(i)); }
  bool Uint(unsigned u) { return skipping() || (element() && doc_.Uint(u)); }
  bool Int64(std::int64_t i) { return skipping() || (element() && doc_.Int64(i)); }
  bool Uint64(std::uint64_t u) { return skipping() || (element() && doc_.Uint64(u)); }
  bool Double(double d) { return skipping() || (element() && doc_.Double(d)); }
  bool RawNumber(const char* s, SizeType n, bool copy) {
    return skipping() || (element() && doc_.RawNumber(s, n, copy));
  }
  bool String(const char* s, SizeType n, bool copy) {
    if (skipping()) return true;
    return element() && utf8(s, n) && doc_.String(s, n, copy);
  }
  bool Key(const char* s, SizeType n, bool copy) {
    if (skipping()) return true;
    if (depth_ == 1) ++root_position_;  // the root is an object: one position per member
    return utf8(s, n) && doc_.Key(s, n, copy);
  }
  bool StartObject() {
    return open(false, [&] { return doc_.StartObject(); });
  }
  bool StartArray() {
    return open(true, [&] { return doc_.StartArray(); });
  }
  bool EndObject(SizeType members) {
    return close([&] { return doc_.EndObject(members); });
  }
  bool EndArray(SizeType elements) {
    return close([&] { return doc_.EndArray(elements); });
  }

  // Why the handler stopped the parse; empty when it did not.
  const std::string& failure() const { return failure_; }
  JsonError::Kind failure_kind() const { return failure_kind_; }

 private:
  bool skipping() const { return skip_ > 0; }

  // Called as a value starts (containers included): counts root array positions.
  bool element() {
    if (depth_ == 1 && root_is_array_) ++root_position_;
    return true;
  }

  bool utf8(const char* s, SizeType n) {
    if (utf8_valid(std::string_view(s, n))) return true;
    failure_ = "JSON text has a string that is not valid UTF-8";
    failure_kind_ = JsonError::Kind::bad_encoding;
    return false;
  }

  template <typename Start>
  bool open(bool is_array, Start start) {
    if (skipping()) {
      ++skip_;
      return true;
    }
    element();
    if (depth_ == max_depth_) {
      if (pruned_ == nullptr) {
        failure_ = "JSON text nests deeper than the limit of " + std::to_string(max_depth_) +
                   " levels of objects and arrays";
        failure_kind_ = JsonError::Kind::too_deep;
        return false;
      }
      if (pruned_->empty() || pruned_->back() != root_position_) pruned_->push_back(root_position_);
      skip_ = 1;
      return true;
    }
    if (depth_ == 0) root_is_array_ = is_array;
    ++depth_;
    return start();
  }

  template <typename End>
  bool close(End end) {
    if (skipping()) {
      // The skipped container ends: it stands in its parent as null.
      return --skip_ > 0 || doc_.Null();
    }
    --depth_;
    return end();
  }

  Document& doc_;
  std::size_t max_depth_;
  std::vector<std::size_t>* pruned_;  // null: refuse over-deep text instead of pruning it
  std::size_t depth_ = 0;
  std::size_t skip_ = 0;  // open containers inside the one being skipped, itself included
  bool root_is_array_ = false;
  std::size_t root_position_ = std::size_t(-1);  // position of the root element being read
  std::string failure_;
  JsonError::Kind failure_kind_ = JsonError::Kind::invalid;
};

Document parse_guarded(std::string_view text, std::size_t max_bytes, std::size_t max_depth,
                       std::vector<std::size_t>* pruned) {
  if (text.size() > max_bytes) {
    throw JsonError("JSON body of " + std::to_string(text.size()) + " bytes exceeds the limit of " +
                        std::to_string(max_bytes) + " bytes",
                    JsonError::Kind::too_large);
  }
  // Iterative: the reader's own nesting lives on the heap, so no text can exhaust the stack.
  // kParseStopWhenDoneFlag is not used: trailing garbage after the value is an error.
  constexpr unsigned kFlags =
      rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  Document doc;
  GuardedHandler guard(doc, max_depth, pruned);
  rapidjson::ParseResult result;
  auto generate = [&](Document&) {
    rapidjson::Reader reader;
    rapidjson::MemoryStream bytes(text.data(), text.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> stream(bytes);
    result = reader.Parse<kFlags>(stream, guard);
    return !result.IsError();
  };
  doc.Populate(generate);
  if (!result.IsError()) return doc;
  if (!guard.failure().empty()) {
    throw JsonError(guard.failure() + " (at offset " + std::to_string(result.Offset()) + ")",
                    guard.failure_kind());
  }
  const bool encoding = result.Code() == rapidjson::kParseErrorStringInvalidEncoding ||
                        result.Code() == rapidjson::kParseErrorStringUnicodeSurrogateInvalid;
  throw JsonError(std::string(encoding ? "JSON text is not valid UTF-8" : "malformed JSON") +
                      " at offset " + std::to_string(result.Offset()) + ": " +
                      rapidjson::GetParseError_En(result.Code()),
                  encoding ? JsonError::Kind::bad_encoding : JsonError::Kind::invalid);
}

}  // namespace

Document parse(std::string_view text, std::size_t max_bytes, std::size_t max_depth) {
  return parse_guarded(text, max_bytes, max_depth, nullptr);
}

Document parse_object(std::string_view text, std::size_t max_bytes, std::size_t max_depth) {
  Document doc = parse(text, max_bytes, max_depth);
  if (!doc.IsObject()) throw JsonError("JSON body must be an object");
  return doc;
}

PrunedDocument parse_pruned(std::string_view text, std::size_t max_bytes, std::size_t max_depth) {
  PrunedDocument out;
  out.doc = parse_guarded(text, max_bytes, max_depth, &out.pruned);
  return out;
}

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write_string(Writer& w, const Value& s, bool key) {
  std::string_view text(s.GetString(), s.GetStringLength());
  std::string repaired;
  if (!utf8_valid(text)) {
    repaired = utf8_sanitize(text);
    text = repaired;
  }
  const auto n = static_cast<SizeType>(text.size());
  key ? w.Key(text.data(), n, true) : w.String(text.data(), n, true);
}

// Writes a scalar, or opens a container (returning true: its elements follow).
bool write_start(Writer& w, const Value& v) {
  switch (v.GetType()) {
    case rapidjson::kObjectType:
      w.StartObject();
      return true;
    case rapidjson::kArrayType:
      w.StartArray();
      return true;
    case rapidjson::kStringType:
      write_string(w, v, false);
      return false;
    case rapidjson::kNullType:
      w.Null();
      return false;
    case rapidjson::kFalseType:
      w.Bool(false);
      return false;
    case rapidjson::kTrueType:
      w.Bool(true);
      return false;
    case rapidjson::kNumberType:
      if (v.IsDouble()) {
        std::isfinite(v.GetDouble()) ? w.Double(v.GetDouble()) : w.Null();
      } else if (v.IsInt64()) {
        w.Int64(v.GetInt64());
      } else {
        w.Uint64(v.GetUint64());
      }
      return false;
  }
  return false;
}

}  // namespace

std::string to_string(const Value& value) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  // An explicit stack instead of Value::Accept, which recurses once per level.
  struct Frame {
    const Value* container;
    SizeType next;
  };
  std::vector<Frame> stack;
  if (write_start(w, value)) stack.push_back({&value, 0});
  while (!stack.empty()) {
    const Value& c = *stack.back().container;
    const SizeType i = stack.back().next++;
    const Value* child = nullptr;
    if (c.IsObject()) {
      if (i == c.MemberCount()) {
        w.EndObject();
        stack.pop_back();
        continue;
      }
      const auto& member = *(c.MemberBegin() + i);
      write_string(w, member.name, true);
      child = &member.value;
    } else {
      if (i == c.Size()) {
        w.EndArray();
        stack.pop_back();
        continue;
      }
      child = &c[i];
    }
    if (write_start(w, *child)) stack.push_back({child, 0});
  }
  return std::string(buffer.GetString(), buffer.GetSize());
}

Document copy(const Value& value) {
  Document doc;
  Value v = clone(value, doc.GetAllocator());
  static_cast<Value&>(doc) = v;  // moves: RapidJSON assignment transfers ownership
  return doc;
}

namespace {

// A fresh value of `v`'s type: a copied scalar or string, or an empty container of the same kind.
Value shallow_clone(const Value& v, Document::AllocatorType& alloc) {
  if (v.IsString()) return Value(v.GetString(), v.GetStringLength(), alloc);
  if (v.IsArray()) {
    Value out(rapidjson::kArrayType);
    out.Reserve(v.Size(), alloc);
    return out;
  }
  if (v.IsObject()) return Value(rapidjson::kObjectType);
  return Value(v, alloc);  // null, bool, number: nothing to share
}

}  // namespace

Value clone(const Value& value, Document::AllocatorType& alloc) {
  // Depth first with an explicit stack. A frame's `copy` points into its parent's element storage,
  // which only grows while the parent is on top, i.e. after the frame above it has been popped.
  struct Frame {
    const Value* source;
    Value* copy;
    SizeType next;
  };
  Value out = shallow_clone(value, alloc);
  std::vector<Frame> stack;
  if (value.IsArray() || value.IsObject()) stack.push_back({&value, &out, 0});
  while (!stack.empty()) {
    Frame& f = stack.back();
    const SizeType i = f.next++;
    const Value* child = nullptr;
    Value* placed = nullptr;
    if (f.source->IsObject()) {
      if (i == f.source->MemberCount()) {
        stack.pop_back();
        continue;
      }
      const auto& member = *(f.source->MemberBegin() + i);
      child = &member.value;
      f.copy->AddMember(shallow_clone(member.name, alloc), shallow_clone(*child, alloc), alloc);
      placed = &(f.copy->MemberEnd() - 1)->value;
    } else {
      if (i == f.source->Size()) {
        stack.pop_back();
        continue;
      }
      child = &(*f.source)[i];
      f.copy->PushBack(shallow_clone(*child, alloc), alloc);
      placed = &(*f.copy)[f.copy->Size() - 1];
    }
    if (child->IsArray() || child->IsObject())
      stack.push_back({child, placed, 0});  // f dangles now
  }
  return out;
}

const Value* find(const Value& object, std::string_view key) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(Value(rapidjson::StringRef(key.data(), key.size())));
  return it == object.MemberEnd() ? nullptr : &it->value;
}

namespace {
[[noreturn]] void wrong_type(std::string_view key, const char* expected) {
  throw JsonError("\"" + std::string(key) + "\" must be " + expected);
}
}  // namespace

std::string get_string(const Value& object, std::string_view key, std::string fallback) {
  const Value* v = find(object, key);
  if (v == nullptr || v->IsNull()) return fallback;
  if (!v->IsString()) wrong_type(key, "a string");
  return std::string(v->GetString(), v->GetStringLength());
}

double get_number(const Value& object, std::string_view key, double fallback) {
  const Value* v = find(object, key);
  if (v == nullptr || v->IsNull()) return fallback;
  if (!v->IsNumber()) wrong_type(key, "a number");
  return v->GetDouble();
}

std::int64_t get_int(const Value& object, std::string_view key, std::int64_t fallback) {
  const Value* v = find(object, key);
  if (v == nullptr || v->IsNull()) return fallback;
  if (v->IsInt64()) return v->GetInt64();
  if (v->IsDouble()) {
    const double d = v->GetDouble();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      return static_cast<std::int64_t>(d);
    }
  }
  wrong_type(key, "an integer");
}

bool get_bool(const Value& object, std::string_view key, bool fallback) {
  const Value* v = find(object, key);
  if (v == nullptr || v->IsNull()) return fallback;
  if (!v->IsBool()) wrong_type(key, "a boolean");
  return v->GetBool();
}

}  // namespace podworker::json
