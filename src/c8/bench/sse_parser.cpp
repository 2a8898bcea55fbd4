#include "c8/bench/sse_parser.h"

#include <nlohmann/json.hpp>

namespace c8::bench {

namespace {

// Position and length of the first blank-line terminator in `s`, or npos.
std::pair<size_t, size_t> FindTerminator(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n') {
      if (i + 1 < s.size() && s[i + 1] == '\n') return {i, 2};
      if (i + 2 < s.size() && s[i + 1] == '\r' && s[i + 2] == '\n') return {i, 3};
    } else if (s[i] == '\r') {
      if (i + 3 < s.size() && s[i + 1] == '\n' && s[i + 2] == '\r' && s[i + 3] == '\n') {
        return {i, 4};
      }
      if (i + 1 < s.size() && s[i + 1] == '\r') return {i, 2};
    }
  }
  return {std::string_view::npos, 0};
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

void SseParser::EmitBlock(std::string_view block, std::vector<std::string>* out) {
  std::string data;
  bool has_data = false;
  size_t pos = 0;
  while (pos <= block.size()) {
    size_t eol = block.find_first_of("\r\n", pos);
    std::string_view line =
        block.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    if (line.substr(0, 5) == "data:") {
      std::string_view v = line.substr(5);
      if (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      if (has_data) data += '\n';
      data.append(v);
      has_data = true;
    }
    if (eol == std::string_view::npos) break;
    pos = eol + 1;
    if (block[eol] == '\r' && pos < block.size() && block[pos] == '\n') ++pos;
  }
  if (has_data) {
    std::string_view t = Trim(data);
    if (!t.empty()) out->emplace_back(t);
  }
}

std::vector<std::string> SseParser::Feed(std::string_view bytes) {
  buffer_.append(bytes);
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    auto [pos, len] = FindTerminator(std::string_view(buffer_).substr(start));
    if (pos == std::string_view::npos) break;
    EmitBlock(std::string_view(buffer_).substr(start, pos), &out);
    start += pos + len;
  }
  buffer_.erase(0, start);
  // A single pending data line whose payload is already complete need not wait for "\n\n".
  std::string_view rest = Trim(buffer_);
  if (rest.substr(0, 5) == "data:" && rest.find('\n') == std::string_view::npos) {
    std::string_view payload = Trim(rest.substr(5));
    if (payload == "[DONE]" ||
        (!payload.empty() && (payload.front() == '{' || payload.front() == '[') &&
         nlohmann::json::accept(payload))) {
      out.emplace_back(payload);
      buffer_.clear();
    }
  }
  return out;
}

std::vector<std::string> SseParser::Finish() {
  std::vector<std::string> out;
  EmitBlock(buffer_, &out);
  buffer_.clear();
  return out;
}

}  // namespace c8::bench
