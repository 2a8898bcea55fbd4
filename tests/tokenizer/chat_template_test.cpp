// Chat template tests: every case in tests/data/chat_template/expected.json
// (rendered by tools/make_chat_template_fixtures.py with Python jinja2 set up
// as transformers does) must match byte for byte, and cases that raise in
// Python must come back as errors here.
#include "c8/tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "c8/tokenizer/jinja_interpreter.h"

namespace c8 {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

const std::string kDataDir = std::string(C8_SOURCE_DIR) + "/tests/data/chat_template";

std::string ReadText(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const ojson& Expected() {
  static const ojson j = ojson::parse(ReadText(kDataDir + "/expected.json"));
  return j;
}

std::string TempDir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("c8_chat_template_test_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

TEST(ChatTemplateFixtures, AllTemplateCasesMatchPython) {
  const ojson& exp = Expected();
  std::map<std::string, ChatTemplate> templates;
  for (auto it = exp["templates"].begin(); it != exp["templates"].end(); ++it) {
    const ojson& t = it.value();
    std::string source = ReadText(kDataDir + "/" + t["file"].get<std::string>());
    ASSERT_FALSE(source.empty()) << t["file"];
    auto ct = ChatTemplate::FromString(
        source, t["bos_token"].is_null() ? "" : t["bos_token"].get<std::string>(),
        t["eos_token"].is_null() ? "" : t["eos_token"].get<std::string>());
    ASSERT_TRUE(ct.ok()) << it.key() << ": " << ct.message();
    templates.emplace(it.key(), std::move(ct).value());
  }
  int n = 0, n_err = 0, failures = 0;
  for (const ojson& c : exp["cases"]) {
    ++n;
    const std::string name = c["template"].get<std::string>();
    const ojson& conv = exp["conversations"][c["conversation"].get<size_t>()];
    auto out = templates.at(name).Apply(conv["messages"], c["add_generation_prompt"].get<bool>(),
                                        c["extra_context"]);
    std::string label = name + " / " + conv["name"].get<std::string>() +
                        " / agp=" + (c["add_generation_prompt"].get<bool>() ? "1" : "0") +
                        " / extra=" + c["extra_context"].dump();
    if (c.contains("error")) {
      ++n_err;
      EXPECT_FALSE(out.ok()) << label << ": Python raised " << c["error"] << " but C++ rendered:\n"
                             << (out.ok() ? out.value() : "");
      if (out.ok()) ++failures;
    } else {
      ASSERT_TRUE(out.ok()) << label << ": " << out.message();
      EXPECT_EQ(out.value(), c["expected"].get<std::string>()) << label;
      if (out.value() != c["expected"].get<std::string>()) ++failures;
    }
    if (failures > 10) FAIL() << "too many failures, stopping";
  }
  EXPECT_GE(n, 20 * 6);
  EXPECT_GT(n_err, 0);
}

TEST(ChatTemplateFixtures, FeatureTemplatesMatchPython) {
  int failures = 0;
  for (const ojson& f : Expected()["features"]) {
    const std::string name = f["name"].get<std::string>();
    auto t = jinja::Template::Parse(f["source"].get<std::string>());
    Result<std::string> out =
        t.ok() ? Result<std::string>(Error("")) : Result<std::string>(t.status());
    if (t.ok()) {
      std::vector<std::pair<std::string, jinja::Value>> ctx;
      for (auto it = f["context"].begin(); it != f["context"].end(); ++it)
        ctx.emplace_back(it.key(), jinja::Value::FromJson(it.value()));
      out = t.value().Render(ctx);
    }
    if (f.contains("error")) {
      EXPECT_FALSE(out.ok()) << name << ": Python raised " << f["error"] << " but C++ rendered:\n"
                             << (out.ok() ? out.value() : "");
      if (out.ok()) ++failures;
    } else {
      EXPECT_TRUE(out.ok()) << name << ": " << out.message();
      if (!out.ok()) {
        ++failures;
        continue;
      }
      EXPECT_EQ(out.value(), f["expected"].get<std::string>()) << name;
      if (out.value() != f["expected"].get<std::string>()) ++failures;
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(ChatTemplate, Qwen3ThinkingSwitch) {
  auto ct = ChatTemplate::FromString(ReadText(kDataDir + "/qwen3.jinja"), "", "<|im_end|>");
  ASSERT_TRUE(ct.ok()) << ct.message();
  ojson msgs = ojson::parse(R"([{"role":"user","content":"Hi"}])");
  auto on = ct->Apply(msgs, true);
  auto off = ct->Apply(msgs, true, ojson{{"enable_thinking", false}});
  ASSERT_TRUE(on.ok() && off.ok());
  EXPECT_EQ(on.value(), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(off.value(),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST(ChatTemplate, ChatMessageAndJsonOverloadsAgree) {
  auto ct =
      ChatTemplate::FromString(ReadText(kDataDir + "/smollm2.jinja"), "<|im_start|>", "<|im_end|>");
  ASSERT_TRUE(ct.ok()) << ct.message();
  std::vector<ChatMessage> msgs = {{"user", "Hello", {}}};
  auto a = ct->Apply(msgs, true);
  auto b = ct->Apply(nlohmann::json::parse(R"([{"role":"user","content":"Hello"}])"), true);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a.value(), b.value());
  EXPECT_EQ(a.value(),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, FromTokenizerConfigStringAndAddedTokens) {
  std::string dir = TempDir("config_string");
  ojson cfg = {{"bos_token", {{"content", "<s>"}, {"lstrip", false}}},
               {"eos_token", "</s>"},
               {"chat_template",
                "{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]"
                "{% endfor %}{{ eos_token }}"}};
  WriteText(dir + "/tokenizer_config.json", cfg.dump());
  auto ct = ChatTemplate::FromTokenizerConfig(dir + "/tokenizer_config.json");
  ASSERT_TRUE(ct.ok()) << ct.message();
  auto out = ct->Apply(ojson::parse(R"([{"role":"user","content":"hé"}])"), false);
  ASSERT_TRUE(out.ok()) << out.message();
  EXPECT_EQ(out.value(), "<s>[user:hé]</s>");
}

TEST(ChatTemplate, FromTokenizerConfigNamedTemplates) {
  std::string dir = TempDir("config_list");
  ojson cfg = {{"eos_token", nullptr},
               {"chat_template",
                ojson::array({{{"name", "default"}, {"template", "D{{ eos_token is defined }}"}},
                              {{"name", "tool_use"}, {"template", "T{{ tools|length }}"}}})}};
  WriteText(dir + "/tokenizer_config.json", cfg.dump());
  auto ct = ChatTemplate::FromTokenizerConfig(dir + "/tokenizer_config.json");
  ASSERT_TRUE(ct.ok()) << ct.message();
  EXPECT_TRUE(ct->has_tool_use_template());
  EXPECT_EQ(ct->Apply(ojson::array(), false).value(), "DFalse");
  EXPECT_EQ(ct->Apply(ojson::array(), false, ojson{{"tools", ojson::array({1, 2})}}).value(), "T2");
}

TEST(ChatTemplate, MissingChatTemplateNamesFileAndKey) {
  std::string dir = TempDir("config_missing");
  std::string path = dir + "/tokenizer_config.json";
  WriteText(path, R"({"eos_token": "</s>"})");
  auto ct = ChatTemplate::FromTokenizerConfig(path);
  ASSERT_FALSE(ct.ok());
  EXPECT_NE(ct.message().find(path), std::string::npos) << ct.message();
  EXPECT_NE(ct.message().find("'chat_template'"), std::string::npos) << ct.message();

  auto missing = ChatTemplate::FromTokenizerConfig(dir + "/nope.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("nope.json"), std::string::npos);

  WriteText(dir + "/bad.json", "{not json");
  auto bad = ChatTemplate::FromTokenizerConfig(dir + "/bad.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("bad.json"), std::string::npos);
}

TEST(ChatTemplate, SyntaxErrors) {
  auto unknown_filter = ChatTemplate::FromString("{{ x | frobnicate }}", "", "");
  ASSERT_FALSE(unknown_filter.ok());
  EXPECT_NE(unknown_filter.message().find("frobnicate"), std::string::npos)
      << unknown_filter.message();

  auto unterminated = ChatTemplate::FromString("Hello {{ name ", "", "");
  ASSERT_FALSE(unterminated.ok());
  EXPECT_NE(unterminated.message().find("unexpected end of template"), std::string::npos)
      << unterminated.message();

  auto unclosed_block = ChatTemplate::FromString("{% for m in messages %}x", "", "");
  ASSERT_FALSE(unclosed_block.ok());
  EXPECT_NE(unclosed_block.message().find("endfor"), std::string::npos) << unclosed_block.message();

  auto unknown_test = ChatTemplate::FromString("{{ 1 is prime }}", "", "");
  ASSERT_FALSE(unknown_test.ok());
  EXPECT_NE(unknown_test.message().find("prime"), std::string::npos);
}

TEST(ChatTemplate, RenderErrorsSurfaceTemplateMessage) {
  // The upstream Gemma template raises on a system message.
  auto ct = ChatTemplate::FromString(
      "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
      "{% endif %}{% for m in messages %}{{ m['content'] }}{% endfor %}",
      "<bos>", "");
  ASSERT_TRUE(ct.ok()) << ct.message();
  auto out = ct->Apply(ojson::parse(R"([{"role":"system","content":"s"}])"), false);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.message().find("System role not supported"), std::string::npos) << out.message();

  auto undefined_fn = ChatTemplate::FromString("{{ no_such_function(1) }}", "", "");
  ASSERT_TRUE(undefined_fn.ok());
  auto r = undefined_fn->Apply(ojson::array(), false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("no_such_function"), std::string::npos) << r.message();

  auto type_err = ChatTemplate::FromString("{{ messages[0].content + 1 }}", "", "");
  ASSERT_TRUE(type_err.ok());
  auto t = type_err->Apply(ojson::parse(R"([{"role":"user","content":"a"}])"), false);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.message().find("concatenate"), std::string::npos) << t.message();
}

TEST(ChatTemplate, BadInputsNeverCrash) {
  const std::vector<std::string> inputs = {
      R"([])",
      R"([{}])",
      R"([null, 1, "x", [], {"role": null}])",
      R"([{"role": "user", "content": {"nested": [1, {"a": null}]}}])",
      R"([{"role": "assistant", "content": null, "tool_calls": "not a list"}])",
      R"([{"role": "assistant", "content": "x", "tool_calls": [null, 1, {"function": null}]}])",
      R"([{"role": "tool"}, {"role": "tool", "content": 3.5}])",
      R"([{"role": "user", "content": "\u0000\u001f\ud83d\ude00"}])",
      R"([{"role": "assistant", "content": "</think>", "reasoning_content": 7}])",
      R"([{"role": "user", "content": 18446744073709551615}])",
  };
  for (const char* file : {"smollm2.jinja", "qwen2_instruct.jinja", "qwen2.5_instruct.jinja",
                           "qwen3.jinja", "qwen3_original.jinja", "qwq_32b.jinja"}) {
    auto ct = ChatTemplate::FromString(ReadText(kDataDir + "/" + file), "", "<|im_end|>");
    ASSERT_TRUE(ct.ok()) << file << ": " << ct.message();
    for (const auto& in : inputs) {
      for (bool agp : {false, true}) {
        auto out = ct->Apply(ojson::parse(in), agp, ojson{{"tools", ojson::parse(in)}});
        if (!out.ok()) {
          EXPECT_FALSE(out.message().empty()) << file << " " << in;
        }
      }
    }
    auto not_array = ct->Apply(ojson{{"role", "user"}}, false);
    EXPECT_FALSE(not_array.ok());
    auto bad_extra = ct->Apply(ojson::array(), false, ojson::array({1}));
    EXPECT_FALSE(bad_extra.ok());
  }
  // Deeply nested input is refused, not a stack overflow.
  ojson deep = ojson::array();
  ojson* cur = &deep;
  for (int i = 0; i < 2000; ++i) {
    cur->push_back(ojson::array());
    cur = &(*cur)[0];
  }
  auto ct = ChatTemplate::FromString("{{ messages|tojson }}", "", "");
  ASSERT_TRUE(ct.ok());
  EXPECT_FALSE(ct->Apply(deep, false).ok());
  // Runaway templates stop with an error.
  auto rec =
      ChatTemplate::FromString("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "", "");
  ASSERT_TRUE(rec.ok());
  EXPECT_FALSE(rec->Apply(ojson::array(), false).ok());
  auto big = ChatTemplate::FromString("{{ range(1000000)|length }}", "", "");
  ASSERT_TRUE(big.ok());
  EXPECT_FALSE(big->Apply(ojson::array(), false).ok());
}

TEST(ChatTemplate, StrftimeNow) {
  auto ct = ChatTemplate::FromString(
      "{{ strftime_now('%Y') }}|{{ strftime_now('%d %b %Y')|length }}", "", "");
  ASSERT_TRUE(ct.ok());
  auto out = ct->Apply(ojson::array(), false);
  ASSERT_TRUE(out.ok()) << out.message();
  ASSERT_EQ(out.value().size(), 7u) << out.value();
  EXPECT_EQ(out.value().substr(4), "|11");
}

TEST(ChatTemplate, SmolLM2ModelDirTokenizerConfig) {
  const char* env = std::getenv("C8_SMOLLM2_DIR");
  std::string dir = env ? env : std::string(C8_SOURCE_DIR) + "/models/smollm2-135m-instruct";
  std::string path = dir + "/tokenizer_config.json";
  if (!fs::exists(path))
    GTEST_SKIP() << "no SmolLM2 tokenizer_config.json at " << path << " (set C8_SMOLLM2_DIR)";
  auto ct = ChatTemplate::FromTokenizerConfig(path);
  ASSERT_TRUE(ct.ok()) << ct.message();
  // Same template text as the GGUF's tokenizer.chat_template
  // (tests/data/chat_template/smollm2.jinja).
  EXPECT_EQ(ct->source(), ReadText(kDataDir + "/smollm2.jinja"));
  auto out = ct->Apply(ojson::parse(R"([{"role":"user","content":"Hi"}])"), true);
  ASSERT_TRUE(out.ok()) << out.message();
  EXPECT_EQ(out.value(),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace c8
