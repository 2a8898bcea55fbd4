#include "c8/structured/structured_output.h"

#include <algorithm>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#ifdef C8_WITH_XGRAMMAR
#include <xgrammar/xgrammar.h>
#endif

namespace c8 {

namespace {

// A regular expression matching exactly `s` (ECMAScript-style escapes, as xgrammar reads them).
std::string RegexLiteral(const std::string& s) {
  static const std::string special = "\\^$.|?*+()[]{}/";
  std::string out;
  for (char c : s) {
    if (special.find(c) != std::string::npos) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

#ifdef C8_WITH_XGRAMMAR

struct StructuredOutput::Impl {
  xgrammar::TokenizerInfo info;
  xgrammar::GrammarCompiler compiler;
  int64_t vocab;
  Impl(xgrammar::TokenizerInfo i, int64_t v)
      : info(std::move(i)),
        compiler(info, /*max_threads=*/4, /*cache_enabled=*/true,
                 /*max_memory_bytes=*/int64_t{256} << 20),
        vocab(v) {}
};

namespace {

class XgrammarConstraint final : public TokenConstraint {
 public:
  explicit XgrammarConstraint(const xgrammar::CompiledGrammar& g) : matcher_(g) {}

  Status FillAllowed(uint32_t* words, int64_t vocab) override {
    int64_t shape[1] = {AllowedMaskWords(vocab)};
    DLTensor t{};
    t.data = words;
    t.device = DLDevice{kDLCPU, 0};
    t.ndim = 1;
    t.dtype = xgrammar::GetBitmaskDLType();
    t.shape = shape;
    t.strides = nullptr;
    t.byte_offset = 0;
    try {
      matcher_.FillNextTokenBitmask(&t);
    } catch (const std::exception& e) {
      return Error(std::string("grammar matcher: ") + e.what());
    }
    return Status::Ok();
  }
  Status Accept(int32_t token) override {
    try {
      if (!matcher_.AcceptToken(token)) {
        return Error("token " + std::to_string(token) + " does not continue the grammar");
      }
    } catch (const std::exception& e) {
      return Error(std::string("grammar matcher: ") + e.what());
    }
    return Status::Ok();
  }
  bool IsTerminated() const override { return matcher_.IsTerminated(); }

 private:
  xgrammar::GrammarMatcher matcher_;
};

}  // namespace

bool StructuredOutput::Available() {
  return true;
}

Result<std::shared_ptr<StructuredOutput>> StructuredOutput::Create(
    const Tokenizer& tokenizer, int64_t vocab, std::vector<int32_t> stop_token_ids) {
  if (vocab <= 0 || vocab > (int64_t{1} << 31) - 1) {
    return Error("structured output: vocabulary size " + std::to_string(vocab) + " is invalid");
  }
  // The decoded bytes of every token; special tokens and ids the tokenizer does not know stay
  // "" (xgrammar never allows them inside the grammar; the stop ids end it).
  const int64_t known = std::min<int64_t>(vocab, tokenizer.vocab_size());
  std::vector<std::string> bytes(static_cast<size_t>(known));
  for (int64_t i = 0; i < known; ++i) {
    bytes[static_cast<size_t>(i)] = tokenizer.TokenBytes(static_cast<int32_t>(i));
  }
  if (!tokenizer.byte_level()) {
    return Error(
        "structured output needs a byte-level tokenizer (its tokens' bytes are what the grammar "
        "matches); this model's tokenizer.json has another decoder");
  }
  std::vector<int32_t> stop_ids;
  for (int32_t t : stop_token_ids) {
    if (t >= 0 && t < vocab) stop_ids.push_back(t);
  }
  // No EOS known (generation_config.json without eos_token_id): xgrammar detects the usual
  // end tokens (</s>, <|im_end|>, <|endoftext|>, ...) itself.
  std::optional<std::vector<int32_t>> stops;
  if (!stop_ids.empty()) stops = stop_ids;
  try {
    xgrammar::TokenizerInfo info(bytes, xgrammar::VocabType::RAW, static_cast<int>(vocab), stops,
                                 /*add_prefix_space=*/false);
    return std::shared_ptr<StructuredOutput>(
        new StructuredOutput(std::make_unique<Impl>(std::move(info), vocab)));
  } catch (const std::exception& e) {
    return Error(std::string("structured output: tokenizer vocabulary: ") + e.what());
  }
}

Result<std::shared_ptr<TokenConstraint>> StructuredOutput::Make(const GrammarSpec& spec) {
  const std::string field = spec.field.empty() ? "structured output" : spec.field;
  try {
    xgrammar::CompiledGrammar g = [&] {
      switch (spec.kind) {
        case GrammarSpec::Kind::kJsonObject:
          // Any JSON object: the schema {"type": "object"} (the builtin grammar also admits
          // arrays and scalars, which json_object does not).
          return impl_->compiler.CompileJSONSchema(R"({"type": "object"})",
                                                   /*any_whitespace=*/false);
        case GrammarSpec::Kind::kJsonSchema:
          // Compact JSON (no free whitespace): small models otherwise pad with spaces and
          // newlines until max_tokens.
          return impl_->compiler.CompileJSONSchema(spec.source, /*any_whitespace=*/false,
                                                   std::nullopt, std::nullopt,
                                                   /*strict_mode=*/true);
        case GrammarSpec::Kind::kRegex:
          return impl_->compiler.CompileRegex(spec.source);
        case GrammarSpec::Kind::kChoice: {
          std::string re;
          for (size_t i = 0; i < spec.choices.size(); ++i) {
            if (i) re += "|";
            re += "(" + RegexLiteral(spec.choices[i]) + ")";
          }
          return impl_->compiler.CompileRegex(re);
        }
        case GrammarSpec::Kind::kEbnf:
          return impl_->compiler.CompileGrammar(spec.source, "root");
        case GrammarSpec::Kind::kNone:
          break;
      }
      throw std::runtime_error("no grammar requested");
    }();
    return std::shared_ptr<TokenConstraint>(std::make_shared<XgrammarConstraint>(g));
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (what.size() > 600) what = what.substr(0, 600) + "...";
    return Error(field + ": " + what);
  }
}

#else  // no xgrammar in this build

struct StructuredOutput::Impl {};

bool StructuredOutput::Available() {
  return false;
}

Result<std::shared_ptr<StructuredOutput>> StructuredOutput::Create(const Tokenizer&, int64_t,
                                                                   std::vector<int32_t>) {
  return Error(
      "structured output is not available: this build of c8 has no grammar engine (xgrammar "
      "sources were not fetched by scripts/install_deps.sh)");
}

Result<std::shared_ptr<TokenConstraint>> StructuredOutput::Make(const GrammarSpec& spec) {
  return Error(spec.field + ": this build of c8 has no grammar engine");
}

#endif

StructuredOutput::StructuredOutput(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StructuredOutput::~StructuredOutput() = default;

}  // namespace c8
