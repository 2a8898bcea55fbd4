// GPT-2 byte-level alphabet: every byte 0..255 maps to one printable code point (the printable
// Latin-1 bytes map to themselves, the other 68 to U+0100..U+0143), so any byte string becomes
// a string of vocabulary symbols and back.
#pragma once

#include <string>
#include <string_view>

namespace c8 {

// Appends the UTF-8 of the byte-level symbol of each byte of `bytes`.
void ByteLevelEncode(std::string_view bytes, std::string* out);

// Appends the bytes that byte-level `token` stands for. As HF's ByteLevel decoder: when any
// character of the token is not in the byte-level alphabet (e.g. an added token such as
// "<|im_start|>" with a non-alphabet character), the token's own UTF-8 bytes are appended
// unchanged.
void ByteLevelDecode(std::string_view token, std::string* out);

}  // namespace c8
