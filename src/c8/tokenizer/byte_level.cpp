#include "c8/tokenizer/byte_level.h"

#include <array>
#include <cstdint>

#include "c8/tokenizer/utf8.h"

namespace c8 {

namespace {

struct ByteLevelTables {
  std::array<char32_t, 256> byte_to_cp{};
  std::array<int16_t, 512> cp_to_byte{};  // -1: not in the alphabet; all symbols are < U+0144
  std::array<std::string, 256> byte_to_utf8;

  ByteLevelTables() {
    cp_to_byte.fill(-1);
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const char32_t cp =
          printable(b) ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      byte_to_cp[b] = cp;
      cp_to_byte[cp] = static_cast<int16_t>(b);
      AppendUtf8(cp, &byte_to_utf8[b]);
    }
  }
};

const ByteLevelTables& Tables() {
  static const ByteLevelTables tables;
  return tables;
}

}  // namespace

void ByteLevelEncode(std::string_view bytes, std::string* out) {
  const ByteLevelTables& t = Tables();
  for (unsigned char b : bytes) out->append(t.byte_to_utf8[b]);
}

void ByteLevelDecode(std::string_view token, std::string* out) {
  const ByteLevelTables& t = Tables();
  const size_t start = out->size();
  size_t pos = 0;
  while (pos < token.size()) {
    const char32_t cp = NextCodePoint(token, &pos);
    if (cp >= t.cp_to_byte.size() || t.cp_to_byte[cp] < 0) {
      out->resize(start);
      out->append(token);
      return;
    }
    out->push_back(static_cast<char>(t.cp_to_byte[cp]));
  }
}

}  // namespace c8
