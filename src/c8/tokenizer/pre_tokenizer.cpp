#include "c8/tokenizer/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <string_view>
#include <utility>

#include "c8/tokenizer/byte_level.h"
#include "c8/tokenizer/utf8.h"

namespace c8 {

namespace {

// The GPT-2 pre-tokenization regex used by the ByteLevel pre-tokenizer (use_regex = true).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Members of Unicode White_Space, as the inside of a PCRE2 character class.
constexpr const char* kWhiteSpaceClass =
    R"(\x{9}-\x{D}\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

// A piece of a string: [begin, end) and whether it was matched by the split pattern.
struct Span {
  size_t begin;
  size_t end;
  bool match;
};

// Per-thread PCRE2 JIT stack and match context (PCRE2 objects other than the compiled code must
// not be shared between threads).
class ThreadMatchState {
 public:
  ThreadMatchState() {
    context_ = pcre2_match_context_create(nullptr);
    stack_ = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, nullptr);
    if (context_ && stack_) pcre2_jit_stack_assign(context_, nullptr, stack_);
    data_ = pcre2_match_data_create(1, nullptr);
  }
  ~ThreadMatchState() {
    pcre2_match_data_free(data_);
    pcre2_jit_stack_free(stack_);
    pcre2_match_context_free(context_);
  }
  ThreadMatchState(const ThreadMatchState&) = delete;
  ThreadMatchState& operator=(const ThreadMatchState&) = delete;
  pcre2_match_context* context() const { return context_; }
  pcre2_match_data* data() const { return data_; }

 private:
  pcre2_match_context* context_ = nullptr;
  pcre2_jit_stack* stack_ = nullptr;
  pcre2_match_data* data_ = nullptr;
};

ThreadMatchState& MatchState() {
  thread_local ThreadMatchState state;
  return state;
}

// A compiled PCRE2 regex; immutable after construction, so shareable between threads.
class Regex {
 public:
  static Result<std::shared_ptr<Regex>> Compile(const std::string& pattern, bool literal,
                                                const std::string& where) {
    uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    options |= literal ? PCRE2_LITERAL : PCRE2_UCP;  // PCRE2_LITERAL does not allow UCP
    std::string translated = literal ? pattern : OnigToPcre2Pattern(pattern);
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()),
                                     translated.size(), options, &err, &err_offset, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(err, buf, sizeof(buf));
      return Error(where + ": cannot compile regex '" + pattern + "': " +
                   reinterpret_cast<const char*>(buf) + " at offset " + std::to_string(err_offset));
    }
    auto re = std::shared_ptr<Regex>(new Regex(code));
    re->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    return re;
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the matches in `text` as Oniguruma's find_iter yields them.
  void FindAll(std::string_view text, std::vector<std::pair<size_t, size_t>>* out) const {
    size_t last_end = 0;
    std::optional<size_t> last_match_end;
    while (last_end <= text.size()) {
      size_t b, e;
      if (!MatchFrom(text, last_end, &b, &e)) break;
      if (b == e && last_match_end && *last_match_end == e) {
        last_end +=
            last_end < text.size() ? Utf8CharLen(static_cast<unsigned char>(text[last_end])) : 1;
        continue;
      }
      last_end = e;
      last_match_end = e;
      out->emplace_back(b, e);
    }
  }

 private:
  explicit Regex(pcre2_code* code) : code_(code) {}

  bool MatchFrom(std::string_view text, size_t start, size_t* b, size_t* e) const {
    ThreadMatchState& st = MatchState();
    int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start, 0,
                         st.data(), st.context());
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH && jit_) {
      // E.g. PCRE2_ERROR_JIT_STACKLIMIT on huge inputs: retry with the interpreter.
      rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start,
                       PCRE2_NO_JIT, st.data(), st.context());
    }
    if (rc < 0) return false;  // no match (or a resource limit: the rest stays unsplit)
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data());
    *b = ov[0];
    *e = ov[1];
    return *b <= *e && *e <= text.size();
  }

  pcre2_code* code_;
  bool jit_ = false;
};

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// HF Pattern::find_matches for a regex: the whole of `text` as alternating spans.
std::vector<Span> RegexSpans(const Regex& re, std::string_view text) {
  std::vector<Span> spans;
  if (text.empty()) return {{0, 0, false}};
  std::vector<std::pair<size_t, size_t>> matches;
  re.FindAll(text, &matches);
  size_t prev = 0;
  for (auto [b, e] : matches) {
    if (prev != b) spans.push_back({prev, b, false});
    spans.push_back({b, e, true});
    prev = e;
  }
  if (prev != text.size()) spans.push_back({prev, text.size(), false});
  return spans;
}

// HF Pattern::find_matches for a char predicate: each matching code point is its own span.
std::vector<Span> CharSpans(const std::function<bool(char32_t)>& pred, std::string_view text) {
  std::vector<Span> spans;
  if (text.empty()) return {{0, 0, false}};
  size_t last_offset = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t b = pos;
    const char32_t cp = NextCodePoint(text, &pos);
    if (pred(cp)) {
      if (last_offset < b) spans.push_back({last_offset, b, false});
      spans.push_back({b, pos, true});
      last_offset = pos;
    }
  }
  if (pos > last_offset) spans.push_back({last_offset, pos, false});
  return spans;
}

// HF NormalizedString::split: applies `behavior` to the spans and appends the kept,
// non-empty pieces of `text` to `out`.
void SplitBySpans(std::string_view text, std::vector<Span> spans, Behavior behavior, bool invert,
                  std::vector<std::string>* out) {
  if (invert) {
    for (Span& s : spans) s.match = !s.match;
  }
  // (begin, end, remove)
  std::vector<Span> pieces;
  pieces.reserve(spans.size());
  switch (behavior) {
    case Behavior::kIsolated:
      for (const Span& s : spans) pieces.push_back({s.begin, s.end, false});
      break;
    case Behavior::kRemoved:
      pieces = spans;
      break;
    case Behavior::kContiguous: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.match == previous_match && !pieces.empty()) {
          pieces.back().end = s.end;
        } else {
          pieces.push_back({s.begin, s.end, false});
        }
        previous_match = s.match;
      }
      break;
    }
    case Behavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.match && !previous_match && !pieces.empty()) {
          pieces.back().end = s.end;
        } else {
          pieces.push_back({s.begin, s.end, false});
        }
        previous_match = s.match;
      }
      break;
    }
    case Behavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->match && !previous_match && !pieces.empty()) {
          pieces.back().begin = it->begin;
        } else {
          pieces.push_back({it->begin, it->end, false});
        }
        previous_match = it->match;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
    }
  }
  for (const Span& p : pieces) {
    if (!p.match && p.end > p.begin) out->emplace_back(text.substr(p.begin, p.end - p.begin));
  }
}

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::shared_ptr<Regex> re)
      : add_prefix_space_(add_prefix_space), re_(std::move(re)) {}
  void PreTokenize(std::vector<std::string>* pieces) const override {
    std::vector<std::string> split;
    split.reserve(pieces->size());
    for (std::string& piece : *pieces) {
      if (add_prefix_space_ && (piece.empty() || piece[0] != ' ')) piece.insert(0, 1, ' ');
      if (re_) {
        SplitBySpans(piece, RegexSpans(*re_, piece), Behavior::kIsolated, false, &split);
      } else if (!piece.empty()) {
        split.push_back(std::move(piece));
      }
    }
    pieces->clear();
    for (const std::string& s : split) {
      std::string mapped;
      mapped.reserve(s.size() * 2);
      ByteLevelEncode(s, &mapped);
      pieces->push_back(std::move(mapped));
    }
  }

 private:
  bool add_prefix_space_;
  std::shared_ptr<Regex> re_;  // null when use_regex = false
};

class DigitsPreTokenizer final : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual) : individual_(individual) {}
  void PreTokenize(std::vector<std::string>* pieces) const override {
    std::vector<std::string> out;
    for (const std::string& piece : *pieces) {
      SplitBySpans(piece, CharSpans(IsNumeric, piece),
                   individual_ ? Behavior::kIsolated : Behavior::kContiguous, false, &out);
    }
    *pieces = std::move(out);
  }

 private:
  bool individual_;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(std::shared_ptr<Regex> re, Behavior behavior, bool invert)
      : re_(std::move(re)), behavior_(behavior), invert_(invert) {}
  void PreTokenize(std::vector<std::string>* pieces) const override {
    std::vector<std::string> out;
    for (const std::string& piece : *pieces) {
      SplitBySpans(piece, RegexSpans(*re_, piece), behavior_, invert_, &out);
    }
    *pieces = std::move(out);
  }

 private:
  std::shared_ptr<Regex> re_;
  Behavior behavior_;
  bool invert_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}
  void PreTokenize(std::vector<std::string>* pieces) const override {
    for (const auto& p : parts_) p->PreTokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

Result<bool> GetBool(const nlohmann::json& j, const char* key, bool dflt,
                     const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_boolean()) return Error(where + "." + key + ": expected a boolean");
  return it->get<bool>();
}

}  // namespace

std::string OnigToPcre2Pattern(const std::string& p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  size_t class_start = 0;  // index in p just after '[' or '[^'
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char n = p[i + 1];
      if (n == 's') {
        if (in_class) {
          out += kWhiteSpaceClass;
        } else {
          out += "[";
          out += kWhiteSpaceClass;
          out += "]";
        }
      } else if (n == 'S' && !in_class) {
        out += "[^";
        out += kWhiteSpaceClass;
        out += "]";
      } else {
        out += c;
        out += n;
      }
      ++i;
      continue;
    }
    if (!in_class) {
      if (c == '[') {
        in_class = true;
        out += c;
        if (i + 1 < p.size() && p[i + 1] == '^') {
          out += '^';
          ++i;
        }
        class_start = i + 1;
        continue;
      }
    } else {
      if (c == '[' && i + 1 < p.size() && p[i + 1] == ':') {  // POSIX class [:name:]
        const size_t close = p.find(":]", i + 2);
        if (close != std::string::npos) {
          out.append(p, i, close + 2 - i);
          i = close + 1;
          continue;
        }
      }
      if (c == ']' && i != class_start) in_class = false;
    }
    out += c;
  }
  return out;
}

Result<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const nlohmann::json& j,
                                                        const std::string& where) {
  if (j.is_null()) return std::unique_ptr<PreTokenizer>();
  if (!j.is_object()) return Error(where + ": expected an object or null");
  auto it = j.find("type");
  if (it == j.end() || !it->is_string()) return Error(where + ".type: missing or not a string");
  const std::string type = it->get<std::string>();
  if (type == "ByteLevel") {
    C8_ASSIGN_OR_RETURN(bool add_prefix_space, GetBool(j, "add_prefix_space", true, where));
    C8_ASSIGN_OR_RETURN(bool use_regex, GetBool(j, "use_regex", true, where));
    std::shared_ptr<Regex> re;
    if (use_regex) {
      C8_ASSIGN_OR_RETURN(re, Regex::Compile(kGpt2Pattern, false, where));
    }
    return std::unique_ptr<PreTokenizer>(new ByteLevelPreTokenizer(add_prefix_space, re));
  }
  if (type == "Digits") {
    C8_ASSIGN_OR_RETURN(bool individual, GetBool(j, "individual_digits", false, where));
    return std::unique_ptr<PreTokenizer>(new DigitsPreTokenizer(individual));
  }
  if (type == "Split") {
    auto pat = j.find("pattern");
    if (pat == j.end() || !pat->is_object()) {
      return Error(where +
                   ".pattern: missing or not an object ({\"Regex\": ...} or "
                   "{\"String\": ...})");
    }
    std::shared_ptr<Regex> re;
    if (auto r = pat->find("Regex"); r != pat->end() && r->is_string()) {
      C8_ASSIGN_OR_RETURN(re, Regex::Compile(r->get<std::string>(), false, where + ".pattern"));
    } else if (auto s = pat->find("String"); s != pat->end() && s->is_string()) {
      const std::string lit = s->get<std::string>();
      if (lit.empty()) return Error(where + ".pattern.String: empty split pattern");
      C8_ASSIGN_OR_RETURN(re, Regex::Compile(lit, true, where + ".pattern"));
    } else {
      return Error(where + ".pattern: expected a \"Regex\" or \"String\" member");
    }
    auto b = j.find("behavior");
    if (b == j.end() || !b->is_string()) return Error(where + ".behavior: missing or not a string");
    const std::string bs = b->get<std::string>();
    Behavior behavior;
    if (bs == "Removed") {
      behavior = Behavior::kRemoved;
    } else if (bs == "Isolated") {
      behavior = Behavior::kIsolated;
    } else if (bs == "MergedWithPrevious") {
      behavior = Behavior::kMergedWithPrevious;
    } else if (bs == "MergedWithNext") {
      behavior = Behavior::kMergedWithNext;
    } else if (bs == "Contiguous") {
      behavior = Behavior::kContiguous;
    } else {
      return Error(where + ".behavior: unknown split behavior '" + bs + "'");
    }
    C8_ASSIGN_OR_RETURN(bool invert, GetBool(j, "invert", false, where));
    return std::unique_ptr<PreTokenizer>(new SplitPreTokenizer(re, behavior, invert));
  }
  if (type == "Sequence") {
    auto p = j.find("pretokenizers");
    if (p == j.end() || !p->is_array()) {
      return Error(where + ".pretokenizers: missing or not an array");
    }
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t i = 0; i < p->size(); ++i) {
      C8_ASSIGN_OR_RETURN(auto part, ParsePreTokenizer((*p)[i], where + ".pretokenizers[" +
                                                                    std::to_string(i) + "]"));
      if (part) parts.push_back(std::move(part));
    }
    return std::unique_ptr<PreTokenizer>(new SequencePreTokenizer(std::move(parts)));
  }
  return Error(where + ".type: unsupported pre-tokenizer type '" + type +
               "' (supported: ByteLevel, Digits, Split, Sequence, null)");
}

}  // namespace c8
