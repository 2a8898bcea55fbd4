// Structured output through xgrammar on SmolLM2's real vocabulary: random walks that pick any
// allowed token at every step must always produce text that matches the grammar (JSON that
// parses and satisfies the schema, one of the choices, a regex match), and compile errors name
// the request field.
#include "c8/structured/structured_output.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <string>
#include <vector>

namespace c8 {
namespace {

std::string SmolDir() {
  if (const char* e = std::getenv("C8_SMOLLM2_DIR")) return e;
  return std::string(C8_SOURCE_DIR) + "/models/smollm2-135m-instruct";
}

struct Fixture {
  std::optional<Tokenizer> tok;
  std::shared_ptr<StructuredOutput> so;
  int64_t vocab = 49152;
  int32_t eos = 2;  // <|im_end|>
};

Fixture& Get() {
  static Fixture f = [] {
    Fixture x;
    auto t = Tokenizer::FromFile(SmolDir() + "/tokenizer.json");
    if (!t.ok()) return x;
    x.tok.emplace(std::move(t).value());
    x.eos = x.tok->TokenToId("<|im_end|>");
    auto so = StructuredOutput::Create(*x.tok, x.vocab, {x.eos});
    if (so.ok()) x.so = *so;
    return x;
  }();
  return f;
}

// Samples uniformly among the allowed tokens (the EOS as soon as it is allowed) until the
// constraint terminates; returns the decoded text.
std::string RandomWalk(TokenConstraint& c, uint32_t seed, int max_steps = 400) {
  Fixture& f = Get();
  std::mt19937 rng(seed);
  std::vector<uint32_t> words(static_cast<size_t>(AllowedMaskWords(f.vocab)));
  std::vector<int32_t> out, allowed;
  for (int step = 0; step < max_steps && !c.IsTerminated(); ++step) {
    EXPECT_TRUE(c.FillAllowed(words.data(), f.vocab).ok());
    allowed.clear();
    for (int64_t t = 0; t < f.vocab; ++t) {
      if ((words[t >> 5] >> (t & 31)) & 1u) allowed.push_back(static_cast<int32_t>(t));
    }
    if (allowed.empty()) {
      ADD_FAILURE() << "no token allowed after " << out.size() << " tokens";
      break;
    }
    int32_t pick = allowed[std::uniform_int_distribution<size_t>(0, allowed.size() - 1)(rng)];
    for (int32_t t : allowed) {
      if (t == f.eos) pick = t;
    }
    EXPECT_TRUE(c.Accept(pick).ok());
    if (pick != f.eos) out.push_back(pick);
  }
  EXPECT_TRUE(c.IsTerminated()) << "no end within " << max_steps << " tokens";
  return f.tok->Decode(out);
}

class StructuredOutputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!StructuredOutput::Available()) GTEST_SKIP() << "built without xgrammar";
    ASSERT_TRUE(Get().tok.has_value()) << "SmolLM2 tokenizer missing at " << SmolDir();
    ASSERT_NE(Get().so, nullptr);
  }
};

TEST_F(StructuredOutputTest, JsonSchemaWalksAlwaysParseAndValidate) {
  const nlohmann::json schema = {{"type", "object"},
                                 {"properties",
                                  {{"name", {{"type", "string"}, {"maxLength", 6}}},
                                   {"age", {{"type", "integer"}, {"minimum", 0}, {"maximum", 120}}},
                                   {"ok", {{"type", "boolean"}}},
                                   {"color", {{"enum", {"red", "green", "blue"}}}}}},
                                 {"required", {"name", "age", "ok", "color"}},
                                 {"additionalProperties", false}};
  GrammarSpec spec;
  spec.kind = GrammarSpec::Kind::kJsonSchema;
  spec.source = schema.dump();
  spec.field = "response_format.json_schema";
  for (uint32_t seed = 0; seed < 12; ++seed) {
    auto c = Get().so->Make(spec);
    ASSERT_TRUE(c.ok()) << c.message();
    const std::string text = RandomWalk(**c, seed);
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << text;
    ASSERT_TRUE(j.is_object()) << text;
    EXPECT_EQ(j.size(), 4u) << text;
    ASSERT_TRUE(j["name"].is_string()) << text;
    EXPECT_LE(nlohmann::json(j["name"]).get<std::string>().size(), 6u * 4) << text;
    ASSERT_TRUE(j["age"].is_number_integer()) << text;
    EXPECT_GE(j["age"].get<int>(), 0) << text;
    EXPECT_LE(j["age"].get<int>(), 120) << text;
    EXPECT_TRUE(j["ok"].is_boolean()) << text;
    const std::string color = j["color"];
    EXPECT_TRUE(color == "red" || color == "green" || color == "blue") << text;
  }
}

TEST_F(StructuredOutputTest, JsonObjectIsAnObject) {
  GrammarSpec spec;
  spec.kind = GrammarSpec::Kind::kJsonObject;
  spec.field = "response_format";
  // Random walks over "any object" can nest without end: the walk only checks every prefix
  // stays allowed, and that the first token opens an object.
  auto c = Get().so->Make(spec);
  ASSERT_TRUE(c.ok()) << c.message();
  std::vector<uint32_t> words(static_cast<size_t>(AllowedMaskWords(Get().vocab)));
  ASSERT_TRUE((*c)->FillAllowed(words.data(), Get().vocab).ok());
  const int32_t brace = Get().tok->TokenToId("{");
  const int32_t bracket = Get().tok->TokenToId("[");
  ASSERT_GE(brace, 0);
  EXPECT_TRUE((words[brace >> 5] >> (brace & 31)) & 1u);
  if (bracket >= 0) {
    EXPECT_FALSE((words[bracket >> 5] >> (bracket & 31)) & 1u);
  }
  EXPECT_FALSE((words[Get().eos >> 5] >> (Get().eos & 31)) & 1u);  // no empty output
  // "{}" then EOS is a complete answer.
  const int32_t close = Get().tok->TokenToId("}");
  ASSERT_TRUE((*c)->Accept(brace).ok());
  ASSERT_TRUE((*c)->Accept(close).ok());
  ASSERT_TRUE((*c)->Accept(Get().eos).ok());
  EXPECT_TRUE((*c)->IsTerminated());
}

TEST_F(StructuredOutputTest, ChoiceAndRegex) {
  GrammarSpec choice;
  choice.kind = GrammarSpec::Kind::kChoice;
  choice.choices = {"yes", "no", "maybe (later)", "a.b*c"};
  choice.field = "guided_choice";
  for (uint32_t seed = 0; seed < 16; ++seed) {
    auto c = Get().so->Make(choice);
    ASSERT_TRUE(c.ok()) << c.message();
    const std::string text = RandomWalk(**c, seed);
    EXPECT_TRUE(text == "yes" || text == "no" || text == "maybe (later)" || text == "a.b*c")
        << text;
  }
  GrammarSpec re;
  re.kind = GrammarSpec::Kind::kRegex;
  re.source = "[0-9]{3}-[a-z]{2,4}";
  re.field = "guided_regex";
  for (uint32_t seed = 0; seed < 8; ++seed) {
    auto c = Get().so->Make(re);
    ASSERT_TRUE(c.ok()) << c.message();
    const std::string text = RandomWalk(**c, seed);
    EXPECT_TRUE(std::regex_match(text, std::regex("[0-9]{3}-[a-z]{2,4}"))) << text;
  }
  GrammarSpec ebnf;
  ebnf.kind = GrammarSpec::Kind::kEbnf;
  ebnf.source = R"G(root ::= "(" [0-9]+ ("+" [0-9]+)? ")")G";
  ebnf.field = "guided_grammar";
  auto c = Get().so->Make(ebnf);
  ASSERT_TRUE(c.ok()) << c.message();
  const std::string text = RandomWalk(**c, 3, 200);
  EXPECT_TRUE(std::regex_match(text, std::regex(R"(\([0-9]+(\+[0-9]+)?\))"))) << text;
}

TEST_F(StructuredOutputTest, DisallowedTokenAndBadGrammarsAreErrors) {
  GrammarSpec re;
  re.kind = GrammarSpec::Kind::kRegex;
  re.source = "[0-9]+";
  re.field = "guided_regex";
  auto c = Get().so->Make(re);
  ASSERT_TRUE(c.ok());
  const int32_t letter = Get().tok->TokenToId("a");
  Status s = (*c)->Accept(letter);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("does not continue the grammar"), std::string::npos) << s.message();

  // Grammars that do not compile: the error starts with the request field.
  const GrammarSpec bad[] = {
      {GrammarSpec::Kind::kJsonSchema, "{\"type\": ", {}, "guided_json"},
      {GrammarSpec::Kind::kRegex, "([0-9]", {}, "guided_regex"},
      {GrammarSpec::Kind::kEbnf, "root ::= undefined_rule", {}, "guided_grammar"},
  };
  for (const GrammarSpec& g : bad) {
    auto e = Get().so->Make(g);
    ASSERT_FALSE(e.ok()) << g.source;
    EXPECT_EQ(e.message().rfind(g.field + ": ", 0), 0u) << e.message();
  }
}

}  // namespace
}  // namespace c8
