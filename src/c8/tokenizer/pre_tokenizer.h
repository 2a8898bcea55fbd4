// Pre-tokenizers of a HF tokenizer.json ("pre_tokenizer" field): they cut normalized text into
// the pieces that the model tokenizes independently. Supported: ByteLevel (add_prefix_space,
// use_regex with the GPT-2 regex; maps bytes to the byte-level alphabet), Digits
// (individual_digits), Split (String or Regex pattern, behavior Removed / Isolated /
// MergedWithPrevious / MergedWithNext / Contiguous, invert) and Sequence. A null pre-tokenizer is
// represented by a null pointer.
//
// Regexes are Oniguruma patterns in tokenizer.json; they run on PCRE2 (UTF + UCP, JIT when
// available) after translating `\s`/`\S` to Unicode White_Space as Oniguruma defines it, and are
// iterated like Oniguruma's find_iter (an empty match right after the previous match is skipped).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "c8/util/status.h"

namespace c8 {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits every piece of `*pieces` (valid UTF-8) further, keeping order; empty pieces are
  // dropped. Thread-safe (const, no shared mutable state).
  virtual void PreTokenize(std::vector<std::string>* pieces) const = 0;
};

// Builds the pre-tokenizer described by `j`; `where` names the field for error messages
// (e.g. "tokenizer.json: pre_tokenizer"). Returns nullptr for JSON null.
Result<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const nlohmann::json& j,
                                                        const std::string& where);

// Translates an Oniguruma pattern to PCRE2 syntax (exposed for tests): `\s` becomes the
// Unicode White_Space class, `\S` its complement (outside character classes).
std::string OnigToPcre2Pattern(const std::string& pattern);

}  // namespace c8
