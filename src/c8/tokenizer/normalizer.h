// Normalizers of a HF tokenizer.json ("normalizer" field): Unicode normalization forms
// (NFC, NFD, NFKC, NFKD, via utf8proc) and Sequence. A null normalizer is represented by a
// null pointer.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "c8/util/status.h"

namespace c8 {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // `text` is valid UTF-8; so is the result.
  virtual std::string Normalize(std::string_view text) const = 0;
};

// Builds the normalizer described by `j`. `where` names the field for error messages
// (e.g. "tokenizer.json: normalizer"). Returns nullptr for JSON null.
Result<std::unique_ptr<Normalizer>> ParseNormalizer(const nlohmann::json& j,
                                                    const std::string& where);

}  // namespace c8
