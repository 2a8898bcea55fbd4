// Text helpers for the Jinja interpreter: UTF-8 code points, Python-style
// string operations (strip/split/case mapping) and Python float formatting.
// Invalid UTF-8 never fails: a stray byte decodes as U+FFFD and re-encodes as
// that byte's replacement, so no input can crash these helpers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace c8::jinja {

// Decodes UTF-8 into code points (invalid bytes -> U+FFFD).
std::vector<char32_t> DecodeUtf8(std::string_view s);
// Appends the UTF-8 encoding of `cp` to `out`.
void AppendUtf8(char32_t cp, std::string* out);
std::string EncodeUtf8(const std::vector<char32_t>& cps);
// Number of code points (Python len(str)).
int64_t Utf8Length(std::string_view s);

// Python str.isspace() for one code point.
bool IsPySpace(char32_t c);
char32_t ToUpperCp(char32_t c);
char32_t ToLowerCp(char32_t c);
bool IsCasedLower(char32_t c);
bool IsCasedUpper(char32_t c);
bool IsAlnumCp(char32_t c);

std::string PyUpper(std::string_view s);
std::string PyLower(std::string_view s);
std::string PyCapitalize(std::string_view s);  // str.capitalize()
std::string PyTitle(std::string_view s);       // str.title()
// str.strip/lstrip/rstrip; `chars` null = whitespace.
std::string PyStrip(std::string_view s, const std::string* chars, bool left, bool right);
// str.split / str.rsplit; `sep` null = runs of whitespace. maxsplit < 0 = all.
std::vector<std::string> PySplit(std::string_view s, const std::string* sep, int64_t maxsplit,
                                 bool from_right);
// str.replace(old, new, count); count < 0 = all.
std::string PyReplace(std::string_view s, std::string_view old_s, std::string_view new_s,
                      int64_t count);

// Python repr(float) / str(float): shortest round-trip digits, "1.0", "1e+16", "inf", "nan".
std::string FormatPyFloat(double v);
// Python repr(str) with its quoting and escaping rules.
std::string PyStrRepr(std::string_view s);
// JSON string literal as Python's json.dumps writes it.
std::string JsonQuote(std::string_view s, bool ensure_ascii);

}  // namespace c8::jinja
