// UTF-8 helpers for the tokenizer: lossy decoding with U+FFFD replacement (the rules of Rust's
// String::from_utf8_lossy and Python's bytes.decode("utf-8", "replace"): each maximal subpart of
// an ill-formed sequence becomes one U+FFFD), code point iteration, and the few Unicode
// properties the HF tokenizers pipeline needs (backed by utf8proc).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace c8 {

// UTF-8 of U+FFFD REPLACEMENT CHARACTER.
inline constexpr std::string_view kUtf8Replacement = "\xEF\xBF\xBD";

// Appends `bytes` to `out` as valid UTF-8, replacing each maximal ill-formed subpart with U+FFFD.
// When `final` is false, a trailing sequence that is incomplete but could still become valid is
// not consumed. Returns the number of bytes consumed (== bytes.size() when `final`).
size_t AppendUtf8Lossy(std::string_view bytes, bool final, std::string* out);

// Whole-string form of AppendUtf8Lossy(final = true).
std::string SanitizeUtf8(std::string_view bytes);

// Appends code point `cp` (must be a Unicode scalar value) encoded as UTF-8.
void AppendUtf8(char32_t cp, std::string* out);

// Decodes the code point at s[*pos] of VALID UTF-8 and advances *pos past it.
char32_t NextCodePoint(std::string_view s, size_t* pos);

// Byte length of the UTF-8 sequence whose lead byte is `lead` (1 for ASCII and stray bytes).
inline size_t Utf8CharLen(unsigned char lead) {
  return lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

// Unicode White_Space property (what Rust's char::is_whitespace, regex `\s` and Oniguruma `\s`
// match).
bool IsWhiteSpace(char32_t cp);
// Rust char::is_numeric: general category Nd, Nl or No.
bool IsNumeric(char32_t cp);
// A "word" character as regex `\w` (letters, marks, decimal digits, connector punctuation,
// letter numbers, ZWJ/ZWNJ).
bool IsWordChar(char32_t cp);

}  // namespace c8
