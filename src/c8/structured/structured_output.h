// The grammar engine of structured output: xgrammar's C++ core (built from its PyPI source
// package, cmake/xgrammar.cmake) over the model's vocabulary. One StructuredOutput per served
// model, shared by the request threads: Make() compiles a GrammarSpec (xgrammar caches compiled
// grammars, so repeated schemas are cheap; compile errors name the request field) and returns a
// fresh matcher for one sequence as a TokenConstraint, which the engine asks for an
// allowed-token bitmask before every sampled token of that sequence.
//
// Built without xgrammar (its sources missing at configure time), Create() returns an error
// saying so and requests that ask for structured output get a 400.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "c8/sampling/token_constraint.h"
#include "c8/structured/grammar_spec.h"
#include "c8/tokenizer/tokenizer.h"
#include "c8/util/status.h"

namespace c8 {

class StructuredOutput {
 public:
  // vocab: the logits width (ids the tokenizer does not know are never allowed);
  // stop_token_ids: the ids that end a sequence once the grammar is complete (the model's EOS).
  static Result<std::shared_ptr<StructuredOutput>> Create(const Tokenizer& tokenizer, int64_t vocab,
                                                          std::vector<int32_t> stop_token_ids);
  // Whether this build has the grammar engine.
  static bool Available();
  ~StructuredOutput();

  // A fresh matcher of `spec` (active) for one sequence. Thread-safe.
  Result<std::shared_ptr<TokenConstraint>> Make(const GrammarSpec& spec);

  struct Impl;

 private:
  explicit StructuredOutput(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace c8
