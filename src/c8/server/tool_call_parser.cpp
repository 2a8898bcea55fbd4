// Hermes <tool_call> parsing: whole-text (vLLM extract_tool_calls) and streaming.
#include "c8/server/tool_call_parser.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <utility>

namespace c8 {
namespace {

// ordered_json keeps the model's key order in the re-serialized arguments (like Python dicts).
using ojson = nlohmann::ordered_json;

constexpr std::string_view kOpenTag = "<tool_call>";
constexpr std::string_view kCloseTag = "</tool_call>";
constexpr std::string_view kTextSpace = " \t\n\r\f\v";

bool IsJsonSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool IsBlank(std::string_view s) {
  return s.find_first_not_of(kTextSpace) == s.npos;
}

// Length of the longest proper prefix of `tag` that `s` ends with (0 if none): the part of `s`
// that must be held back because the next piece may complete the tag.
size_t PartialTagSuffix(std::string_view s, std::string_view tag) {
  for (size_t k = std::min(s.size(), tag.size() - 1); k > 0; --k) {
    if (s.substr(s.size() - k) == tag.substr(0, k)) return k;
  }
  return 0;
}

// Decodes a complete JSON string token (with its quotes); nullopt if it is not one.
std::optional<std::string> DecodeJsonString(const std::string& raw) {
  ojson j = ojson::parse(raw, nullptr, /*allow_exceptions=*/false);
  if (!j.is_string()) return std::nullopt;
  return j.get<std::string>();
}

struct RawCall {
  std::string name;
  std::string arguments;
};

// One <tool_call> body -> name and compact arguments; nullopt if malformed.
std::optional<RawCall> ParseCallBody(std::string_view body) {
  ojson j = ojson::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;  // also covers a discarded (invalid) parse
  auto name = j.find("name");
  if (name == j.end() || !name->is_string()) return std::nullopt;
  RawCall call{name->get<std::string>(), "{}"};
  for (const auto& [key, value] : j.items()) {
    if (key == "arguments" || key == "parameters") {
      call.arguments = value.dump(-1, ' ', /*ensure_ascii=*/false, ojson::error_handler_t::replace);
      break;
    }
  }
  return call;
}

}  // namespace

ParsedToolCalls ParseHermesToolCalls(const std::string& text, const ToolCallIdFn& new_id) {
  ParsedToolCalls out;
  const size_t first = text.find(kOpenTag);
  auto as_content = [&] {
    ParsedToolCalls r;
    r.has_content = true;
    r.content = text;
    return r;
  };
  if (first == std::string::npos) return as_content();
  std::vector<RawCall> raw;
  size_t pos = first;
  while ((pos = text.find(kOpenTag, pos)) != std::string::npos) {
    const size_t body = pos + kOpenTag.size();
    const size_t end = text.find(kCloseTag, body);
    std::string_view view(text);
    std::optional<RawCall> call =
        ParseCallBody(end == std::string::npos ? view.substr(body) : view.substr(body, end - body));
    if (!call) return as_content();
    raw.push_back(std::move(*call));
    if (end == std::string::npos) break;
    pos = end + kCloseTag.size();
  }
  out.content = text.substr(0, first);
  out.has_content = !IsBlank(out.content);
  if (!out.has_content) out.content.clear();
  for (RawCall& c : raw) {
    out.calls.push_back(ToolCall{new_id(), std::move(c.name), std::move(c.arguments)});
  }
  return out;
}

HermesToolStreamParser::HermesToolStreamParser(ToolCallIdFn new_id) : new_id_(std::move(new_id)) {}

StreamDelta HermesToolStreamParser::Feed(const std::string& text) {
  StreamDelta out;
  pending_ += text;
  Process(out, /*final=*/false);
  return out;
}

StreamDelta HermesToolStreamParser::Finish() {
  StreamDelta out;
  Process(out, /*final=*/true);
  return out;
}

void HermesToolStreamParser::Process(StreamDelta& out, bool final) {
  while (true) {
    const std::string_view tag = in_call_ ? kCloseTag : kOpenTag;
    const size_t p = pending_.find(tag);
    if (p != std::string::npos) {
      std::string before = pending_.substr(0, p);
      pending_.erase(0, p + tag.size());
      if (in_call_) {
        ScanBody(before, out);
        EndCall(out);
      } else {
        EmitText(before, out);
        StartCall();
      }
      continue;
    }
    const size_t keep = final ? 0 : PartialTagSuffix(pending_, tag);
    std::string ready = pending_.substr(0, pending_.size() - keep);
    pending_.erase(0, ready.size());
    if (in_call_) {
      ScanBody(ready, out);
      if (final) EndCall(out);
    } else {
      EmitText(ready, out);
      // No call at all: the text is plain content, whitespace included (as non-streaming).
      if (final && !any_call_tag_) out.content += held_ws_;
      if (final) held_ws_.clear();
    }
    return;
  }
}

void HermesToolStreamParser::EmitText(const std::string& piece, StreamDelta& out) {
  if (piece.empty()) return;
  if (segment_has_text_) {
    out.content += piece;
  } else if (IsBlank(piece)) {
    held_ws_ += piece;
  } else {
    out.content += held_ws_;
    out.content += piece;
    held_ws_.clear();
    segment_has_text_ = true;
  }
}

void HermesToolStreamParser::StartCall() {
  held_ws_.clear();  // a whitespace-only run before a call is dropped
  segment_has_text_ = false;
  in_call_ = true;
  any_call_tag_ = true;
  wrap_ = Wrap::kStart;
  role_ = Role::kSkip;
  key_raw_.clear();
  name_raw_.clear();
  escape_ = in_string_ = literal_ = false;
  depth_ = 0;
  have_name_ = args_seen_ = header_sent_ = false;
  index_ = 0;
  name_.clear();
  args_buf_.clear();
}

void HermesToolStreamParser::EndCall(StreamDelta& out) {
  FlushArgs(out);
  if (header_sent_ && !args_seen_) AddArgs("{}", out);
  in_call_ = false;
  held_ws_.clear();
  segment_has_text_ = false;
}

void HermesToolStreamParser::ScanBody(const std::string& body, StreamDelta& out) {
  for (char c : body) {
    if (wrap_ == Wrap::kDone || wrap_ == Wrap::kError) break;
    ScanChar(c, out);
  }
  FlushArgs(out);
}

void HermesToolStreamParser::ScanChar(char c, StreamDelta& out) {
  auto keep = [&] {
    if (role_ == Role::kArgs) args_buf_ += c;
    if (role_ == Role::kName) name_raw_ += c;
  };
  switch (wrap_) {
    case Wrap::kStart:
      if (c == '{') {
        wrap_ = Wrap::kKeyOrEnd;
      } else if (!IsJsonSpace(c)) {
        wrap_ = Wrap::kError;
      }
      return;
    case Wrap::kKeyOrEnd:
      if (c == '"') {
        key_raw_.assign(1, '"');
        escape_ = false;
        wrap_ = Wrap::kKey;
      } else if (c == '}') {
        wrap_ = Wrap::kDone;
      } else if (!IsJsonSpace(c)) {
        wrap_ = Wrap::kError;
      }
      return;
    case Wrap::kKey: {
      key_raw_ += c;
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        std::optional<std::string> key = DecodeJsonString(key_raw_);
        if (!key) {
          wrap_ = Wrap::kError;
          return;
        }
        role_ = Role::kSkip;
        if (*key == "name" && !have_name_ && name_raw_.empty()) role_ = Role::kName;
        if ((*key == "arguments" || *key == "parameters") && !args_seen_) role_ = Role::kArgs;
        wrap_ = Wrap::kColon;
      }
      return;
    }
    case Wrap::kColon:
      if (c == ':') {
        wrap_ = Wrap::kValueStart;
      } else if (!IsJsonSpace(c)) {
        wrap_ = Wrap::kError;
      }
      return;
    case Wrap::kValueStart:
      if (IsJsonSpace(c)) return;
      if (c == '}' || c == ']' || c == ',' || c == ':') {
        wrap_ = Wrap::kError;
        return;
      }
      in_string_ = c == '"';
      depth_ = (c == '{' || c == '[') ? 1 : 0;
      literal_ = !in_string_ && depth_ == 0;
      escape_ = false;
      if (role_ == Role::kArgs) args_seen_ = true;
      wrap_ = Wrap::kValue;
      keep();
      return;
    case Wrap::kValue:
      if (literal_) {
        if (IsJsonSpace(c) || c == ',' || c == '}' || c == ']') {
          EndValue(out);
          if (wrap_ == Wrap::kAfterValue) ScanChar(c, out);  // the delimiter is not the value's
        } else {
          keep();
        }
        return;
      }
      keep();
      if (in_string_) {
        if (escape_) {
          escape_ = false;
        } else if (c == '\\') {
          escape_ = true;
        } else if (c == '"') {
          in_string_ = false;
          if (depth_ == 0) EndValue(out);
        }
      } else if (c == '"') {
        in_string_ = true;
      } else if (c == '{' || c == '[') {
        ++depth_;
      } else if ((c == '}' || c == ']') && --depth_ == 0) {
        EndValue(out);
      }
      return;
    case Wrap::kAfterValue:
      if (c == ',') {
        wrap_ = Wrap::kKeyOrEnd;
      } else if (c == '}') {
        wrap_ = Wrap::kDone;
      } else if (!IsJsonSpace(c)) {
        wrap_ = Wrap::kError;
      }
      return;
    case Wrap::kDone:
    case Wrap::kError:
      return;
  }
}

void HermesToolStreamParser::EndValue(StreamDelta& out) {
  wrap_ = Wrap::kAfterValue;
  if (role_ != Role::kName) return;
  std::optional<std::string> name = DecodeJsonString(name_raw_);
  if (!name) {
    wrap_ = Wrap::kError;
    return;
  }
  name_ = std::move(*name);
  have_name_ = true;
  header_sent_ = true;
  index_ = num_calls_++;
  out.tool_calls.push_back(ToolCallDelta{index_, new_id_(), name_, ""});
}

void HermesToolStreamParser::FlushArgs(StreamDelta& out) {
  if (!header_sent_ || args_buf_.empty()) return;
  AddArgs(args_buf_, out);
  args_buf_.clear();
}

void HermesToolStreamParser::AddArgs(const std::string& fragment, StreamDelta& out) {
  if (fragment.empty()) return;
  // Append to this call's fragment delta of this step, if any (never to its header).
  if (!out.tool_calls.empty() && out.tool_calls.back().index == index_ &&
      out.tool_calls.back().id.empty()) {
    out.tool_calls.back().arguments += fragment;
  } else {
    out.tool_calls.push_back(ToolCallDelta{index_, "", "", fragment});
  }
}

}  // namespace c8
