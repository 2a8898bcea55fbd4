#include "c8/tokenizer/jinja_lexer.h"

#include <cerrno>
#include <cstdlib>
#include <string_view>

#include "c8/tokenizer/jinja_text.h"
#include "c8/tokenizer/jinja_value.h"

namespace c8::jinja {
namespace {

bool IsWs(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ||
         (c >= 0x1C && c <= 0x1F);
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsNameChar(char c) {
  return IsNameStart(c) || IsDigit(c);
}
int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string RStripWs(const std::string& s) {
  size_t e = s.size();
  while (e > 0 && IsWs(s[e - 1])) --e;
  return s.substr(0, e);
}

// Python's unicode-escape decoding of a string literal body.
std::string Unescape(std::string_view body, int line) {
  std::string out;
  char32_t pending_high = 0;  // a \uD8xx waiting for its low surrogate
  auto emit = [&](char32_t cp) {
    if (pending_high) {
      if (cp >= 0xDC00 && cp <= 0xDFFF) {
        AppendUtf8(0x10000 + ((pending_high - 0xD800) << 10) + (cp - 0xDC00), &out);
        pending_high = 0;
        return;
      }
      AppendUtf8(0xFFFD, &out);
      pending_high = 0;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      pending_high = cp;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      AppendUtf8(0xFFFD, &out);
    } else {
      AppendUtf8(cp, &out);
    }
  };
  auto flush = [&]() {
    if (pending_high) {
      AppendUtf8(0xFFFD, &out);
      pending_high = 0;
    }
  };
  size_t i = 0;
  while (i < body.size()) {
    char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) {
      flush();
      out.push_back(c);
      ++i;
      continue;
    }
    char e = body[i + 1];
    i += 2;
    switch (e) {
      case '\n':
        break;
      case '\\':
        flush();
        out.push_back('\\');
        break;
      case '\'':
        flush();
        out.push_back('\'');
        break;
      case '"':
        flush();
        out.push_back('"');
        break;
      case 'a':
        flush();
        out.push_back('\a');
        break;
      case 'b':
        flush();
        out.push_back('\b');
        break;
      case 'f':
        flush();
        out.push_back('\f');
        break;
      case 'n':
        flush();
        out.push_back('\n');
        break;
      case 'r':
        flush();
        out.push_back('\r');
        break;
      case 't':
        flush();
        out.push_back('\t');
        break;
      case 'v':
        flush();
        out.push_back('\v');
        break;
      case 'x':
      case 'u':
      case 'U': {
        size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        char32_t cp = 0;
        for (size_t k = 0; k < n; ++k) {
          int h = i + k < body.size() ? HexVal(body[i + k]) : -1;
          if (h < 0)
            throw JinjaError("line " + std::to_string(line) + ": truncated \\" + std::string(1, e) +
                             " escape in string literal");
          cp = cp * 16 + static_cast<char32_t>(h);
        }
        i += n;
        if (cp > 0x10FFFF)
          throw JinjaError("line " + std::to_string(line) + ": illegal Unicode character");
        emit(cp);
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          char32_t cp = static_cast<char32_t>(e - '0');
          for (int k = 0; k < 2 && i < body.size() && body[i] >= '0' && body[i] <= '7'; ++k, ++i)
            cp = cp * 8 + static_cast<char32_t>(body[i] - '0');
          emit(cp);
        } else {
          flush();
          out.push_back('\\');
          out.push_back(e);
        }
    }
  }
  flush();
  return out;
}

class Lexer {
 public:
  explicit Lexer(const std::string& raw) {
    src_.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\r') {
        src_.push_back('\n');
        if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
      } else {
        src_.push_back(raw[i]);
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();  // keep_trailing_newline=False
  }

  std::vector<Token> Run() {
    while (pos_ < src_.size()) {
      size_t found = std::string::npos;
      for (size_t p = src_.find('{', pos_); p != std::string::npos; p = src_.find('{', p + 1)) {
        if (p + 1 < src_.size() &&
            (src_[p + 1] == '{' || src_[p + 1] == '%' || src_[p + 1] == '#')) {
          found = p;
          break;
        }
      }
      if (found == std::string::npos) {
        EmitData(src_.substr(pos_));
        pos_ = src_.size();
        break;
      }
      char kind = src_[found + 1];
      char sign = 0;
      if (found + 2 < src_.size() && (src_[found + 2] == '-' || src_[found + 2] == '+'))
        sign = src_[found + 2];
      std::string text = src_.substr(pos_, found - pos_);
      if (sign == '-') {
        text = RStripWs(text);
      } else if (sign != '+' && kind != '{') {  // lstrip_blocks
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if ((l_pos > 0 || line_starting_) && l_pos < text.size()) {
          bool all_ws = true;
          for (size_t k = l_pos; k < text.size(); ++k) all_ws = all_ws && IsWs(text[k]);
          if (all_ws) text.resize(l_pos);
        }
      }
      EmitData(text);
      CountLines(pos_, found);
      pos_ = found + 2 + (sign ? 1 : 0);
      line_starting_ = false;
      if (kind == '#') {
        LexComment();
      } else if (kind == '%' && TryRaw()) {
        // handled
      } else {
        LexTag(kind == '%');
      }
    }
    Token eof;
    eof.type = TokType::kEof;
    eof.line = line_;
    tokens_.push_back(eof);
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void Fail(const std::string& msg) {
    throw JinjaError("line " + std::to_string(line_) + ": " + msg);
  }

  void CountLines(size_t from, size_t to) {
    for (size_t i = from; i < to && i < src_.size(); ++i)
      if (src_[i] == '\n') ++line_;
  }

  void EmitData(const std::string& text) {
    if (text.empty()) return;
    Token t;
    t.type = TokType::kData;
    t.value = text;
    t.line = line_;
    tokens_.push_back(std::move(t));
  }

  void Push(TokType type, std::string value) {
    Token t;
    t.type = type;
    t.value = std::move(value);
    t.line = line_;
    tokens_.push_back(std::move(t));
  }

  // After a block/comment end: consume "\s*" for '-', nothing for '+', one '\n' otherwise.
  size_t AfterEnd(size_t end, char modifier) {
    if (modifier == '-') {
      while (end < src_.size() && IsWs(src_[end])) ++end;
    } else if (modifier != '+' && end < src_.size() && src_[end] == '\n') {
      ++end;
    }
    return end;
  }

  void LexComment() {
    size_t q = src_.find("#}", pos_);
    if (q == std::string::npos) Fail("Missing end of comment tag");
    char mod = (q > pos_ && (src_[q - 1] == '-' || src_[q - 1] == '+')) ? src_[q - 1] : 0;
    size_t end = AfterEnd(q + 2, mod);
    CountLines(pos_, end);
    line_starting_ = end > 0 && src_[end - 1] == '\n';
    pos_ = end;
  }

  // "{% raw %}...{% endraw %}" (pos_ is just after "{%" and its sign).
  bool TryRaw() {
    size_t p = pos_;
    while (p < src_.size() && IsWs(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0 || (p + 3 < src_.size() && IsNameChar(src_[p + 3])))
      return false;
    p += 3;
    while (p < src_.size() && IsWs(src_[p])) ++p;
    if (src_.compare(p, 3, "-%}") == 0) {
      p += 3;
      while (p < src_.size() && IsWs(src_[p])) ++p;
    } else if (src_.compare(p, 2, "%}") == 0) {
      p += 2;
    } else {
      return false;
    }
    // Find "{%[-+]? \s* endraw \s* (+%}|-%}\s*|%}\n?)".
    for (size_t q = src_.find("{%", p); q != std::string::npos; q = src_.find("{%", q + 1)) {
      size_t r = q + 2;
      char sign = 0;
      if (r < src_.size() && (src_[r] == '-' || src_[r] == '+')) sign = src_[r++];
      while (r < src_.size() && IsWs(src_[r])) ++r;
      if (src_.compare(r, 6, "endraw") != 0) continue;
      r += 6;
      while (r < src_.size() && IsWs(src_[r])) ++r;
      char mod = 0;
      if (r < src_.size() && (src_[r] == '-' || src_[r] == '+')) mod = src_[r++];
      if (src_.compare(r, 2, "%}") != 0) continue;
      size_t end = AfterEnd(r + 2, mod);
      std::string text = src_.substr(p, q - p);
      if (sign == '-') {
        text = RStripWs(text);
      } else if (sign != '+') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if (l_pos > 0 && l_pos < text.size()) {
          bool all_ws = true;
          for (size_t k = l_pos; k < text.size(); ++k) all_ws = all_ws && IsWs(text[k]);
          if (all_ws) text.resize(l_pos);
        }
      }
      EmitData(text);
      CountLines(pos_, end);
      line_starting_ = end > 0 && src_[end - 1] == '\n';
      pos_ = end;
      return true;
    }
    Fail("Missing end of raw directive");
  }

  // Scans "\d+(_\d+)*" at p; returns the end or p when there is no digit.
  size_t ScanDigits(size_t p) const {
    if (p >= src_.size() || !IsDigit(src_[p])) return p;
    size_t q = p;
    while (true) {
      while (q < src_.size() && IsDigit(src_[q])) ++q;
      if (q + 1 < src_.size() && src_[q] == '_' && IsDigit(src_[q + 1])) {
        ++q;
        continue;
      }
      return q;
    }
  }

  bool TryNumber() {
    size_t p = pos_;
    size_t d_end = ScanDigits(p);
    if (d_end == p) return false;
    // Float: digits (.digits)? e[+-]digits | digits .digits
    size_t q = d_end;
    bool is_float = false;
    if (q + 1 < src_.size() && src_[q] == '.' && IsDigit(src_[q + 1])) {
      q = ScanDigits(q + 1);
      is_float = true;
    }
    if (q < src_.size() && (src_[q] == 'e' || src_[q] == 'E')) {
      size_t r = q + 1;
      if (r < src_.size() && (src_[r] == '+' || src_[r] == '-')) ++r;
      size_t r_end = ScanDigits(r);
      if (r_end > r) {
        q = r_end;
        is_float = true;
      }
    }
    if (is_float) {
      std::string text;
      for (size_t k = p; k < q; ++k)
        if (src_[k] != '_') text.push_back(src_[k]);
      Token t;
      t.type = TokType::kFloat;
      t.value = text;
      t.float_value = std::strtod(text.c_str(), nullptr);
      t.line = line_;
      tokens_.push_back(std::move(t));
      pos_ = q;
      return true;
    }
    // Integer: 0b / 0o / 0x prefixes, or decimal.
    int base = 10;
    size_t start = p;
    if (src_[p] == '0' && p + 1 < src_.size()) {
      char x = static_cast<char>(src_[p + 1] | 32);
      if (x == 'b') base = 2;
      if (x == 'o') base = 8;
      if (x == 'x') base = 16;
    }
    std::string digits;
    if (base != 10) {
      q = p + 2;
      while (q < src_.size()) {
        char c = src_[q];
        int h = HexVal(c);
        if (c == '_' && q + 1 < src_.size() && HexVal(src_[q + 1]) >= 0 &&
            HexVal(src_[q + 1]) < base) {
          ++q;
          continue;
        }
        if (h < 0 || h >= base) break;
        digits.push_back(c);
        ++q;
      }
      if (digits.empty()) {
        base = 10;
      }
    }
    if (base == 10) {
      q = d_end;
      if (src_[start] == '0') {  // "0(_?0)*"
        q = start + 1;
        while (q < src_.size() &&
               (src_[q] == '0' || (src_[q] == '_' && q + 1 < src_.size() && src_[q + 1] == '0')))
          ++q;
      }
      for (size_t k = start; k < q; ++k)
        if (src_[k] != '_') digits.push_back(src_[k]);
    }
    errno = 0;
    char* endp = nullptr;
    long long v = std::strtoll(digits.c_str(), &endp, base);
    if (errno == ERANGE) Fail("integer literal '" + digits + "' is too large");
    Token t;
    t.type = TokType::kInt;
    t.value = digits;
    t.int_value = v;
    t.line = line_;
    tokens_.push_back(std::move(t));
    pos_ = q;
    return true;
  }

  void LexString() {
    char quote = src_[pos_];
    size_t p = pos_ + 1;
    while (p < src_.size() && src_[p] != quote) {
      if (src_[p] == '\\') ++p;
      ++p;
    }
    if (p >= src_.size()) Fail("unexpected end of template inside a string literal");
    std::string body = src_.substr(pos_ + 1, p - pos_ - 1);
    Push(TokType::kString, Unescape(body, line_));
    CountLines(pos_, p + 1);
    pos_ = p + 1;
  }

  void LexTag(bool block) {
    Push(block ? TokType::kBlockBegin : TokType::kVarBegin, block ? "{%" : "{{");
    std::vector<char> balance;
    while (true) {
      if (pos_ >= src_.size())
        Fail(std::string("unexpected end of template, expected '") + (block ? "%}" : "}}") + "'");
      if (balance.empty()) {
        if (block) {
          if (src_.compare(pos_, 3, "+%}") == 0 || src_.compare(pos_, 3, "-%}") == 0) {
            size_t end = AfterEnd(pos_ + 3, src_[pos_]);
            Finish(TokType::kBlockEnd, "%}", end);
            return;
          }
          if (src_.compare(pos_, 2, "%}") == 0) {
            Finish(TokType::kBlockEnd, "%}", AfterEnd(pos_ + 2, 0));
            return;
          }
        } else {
          if (src_.compare(pos_, 3, "-}}") == 0) {
            size_t end = pos_ + 3;
            while (end < src_.size() && IsWs(src_[end])) ++end;
            Finish(TokType::kVarEnd, "}}", end);
            return;
          }
          if (src_.compare(pos_, 2, "}}") == 0) {
            Finish(TokType::kVarEnd, "}}", pos_ + 2);
            return;
          }
        }
      }
      char c = src_[pos_];
      if (IsWs(c)) {
        if (c == '\n') ++line_;
        ++pos_;
        continue;
      }
      if (TryNumber()) continue;
      if (IsNameStart(c)) {
        size_t q = pos_;
        while (q < src_.size() && IsNameChar(src_[q])) ++q;
        Push(TokType::kName, src_.substr(pos_, q - pos_));
        pos_ = q;
        continue;
      }
      if (c == '\'' || c == '"') {
        LexString();
        continue;
      }
      static const char* kOps[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/",
                                   "*",  "%",  "~",  "[",  "]",  "(",  ")", "{", "}",
                                   "<",  ">",  "=",  ".",  ":",  "|",  ",", ";"};
      bool matched = false;
      for (const char* op : kOps) {
        size_t n = std::char_traits<char>::length(op);
        if (src_.compare(pos_, n, op) == 0) {
          std::string o(op);
          if (o == "(" || o == "[" || o == "{") {
            balance.push_back(o == "(" ? ')' : o == "[" ? ']' : '}');
          } else if (o == ")" || o == "]" || o == "}") {
            if (balance.empty()) Fail("unexpected '" + o + "'");
            if (balance.back() != o[0])
              Fail("unexpected '" + o + "', expected '" + std::string(1, balance.back()) + "'");
            balance.pop_back();
          }
          Push(TokType::kOp, o);
          pos_ += n;
          matched = true;
          break;
        }
      }
      if (!matched) Fail(std::string("unexpected char '") + c + "'");
    }
  }

  void Finish(TokType type, const char* text, size_t end) {
    Push(type, text);
    CountLines(pos_, end);
    line_starting_ = end > 0 && src_[end - 1] == '\n';
    pos_ = end;
  }

  std::string src_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> Tokenize(const std::string& source) {
  return Lexer(source).Run();
}

}  // namespace c8::jinja
