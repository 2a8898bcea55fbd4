// Hermes <tool_call> parsing: whole text (vLLM semantics) and streaming under every chunking.
#include "c8/server/tool_call_parser.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace c8 {
namespace {

using json = nlohmann::json;

// Deterministic ids in the production shape: "chatcmpl-tool-" + 32 lowercase hex chars.
struct IdGen {
  int next = 0;
  ToolCallIdFn Fn() {
    return [this] {
      char hex[33];
      std::snprintf(hex, sizeof(hex), "%032x", next++);
      return "chatcmpl-tool-" + std::string(hex);
    };
  }
};

bool IsToolId(const std::string& id) {
  const std::string prefix = "chatcmpl-tool-";
  if (id.size() != prefix.size() + 32 || id.compare(0, prefix.size(), prefix) != 0) return false;
  for (size_t i = prefix.size(); i < id.size(); ++i) {
    if (!std::isxdigit(static_cast<unsigned char>(id[i])) || std::isupper(id[i])) return false;
  }
  return true;
}

// ---------------------------------------------------------------- non-streaming

TEST(HermesToolCalls, SingleCallWithContent) {
  IdGen ids;
  ParsedToolCalls r = ParseHermesToolCalls(
      "Some optional text<tool_call>\n"
      "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n"
      "</tool_call>",
      ids.Fn());
  EXPECT_TRUE(r.has_content);
  EXPECT_EQ(r.content, "Some optional text");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].id, "chatcmpl-tool-00000000000000000000000000000000");
  EXPECT_TRUE(IsToolId(r.calls[0].id));
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(r.calls[0].arguments, R"({"city":"Paris","unit":"c"})");
}

TEST(HermesToolCalls, MultipleCallsNoContent) {
  IdGen ids;
  ParsedToolCalls r = ParseHermesToolCalls(
      "\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"unit\": \"c\", \"city\": "
      "\"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"f2\", \"arguments\": {}}\n"
      "</tool_call>",
      ids.Fn());
  EXPECT_FALSE(r.has_content);  // whitespace only before the first call
  EXPECT_EQ(r.content, "");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(r.calls[0].arguments, R"({"unit":"c","city":"Paris"})");  // key order kept
  EXPECT_EQ(r.calls[1].name, "f2");
  EXPECT_EQ(r.calls[1].arguments, "{}");
  EXPECT_EQ(r.calls[0].id, "chatcmpl-tool-00000000000000000000000000000000");
  EXPECT_EQ(r.calls[1].id, "chatcmpl-tool-00000000000000000000000000000001");
}

TEST(HermesToolCalls, ContentKeepsTrailingWhitespaceAndTextAfterCallsIsIgnored) {
  IdGen ids;
  ParsedToolCalls r = ParseHermesToolCalls(
      "Let me check.\n\n<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": 1}}</tool_call>\n"
      "Done.",
      ids.Fn());
  EXPECT_TRUE(r.has_content);
  EXPECT_EQ(r.content, "Let me check.\n\n");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].arguments, R"({"x":1})");
}

TEST(HermesToolCalls, NoCalls) {
  IdGen ids;
  for (std::string text : {"Hello, a < b and <tool or </tool_call> here.", "", "  \n"}) {
    ParsedToolCalls r = ParseHermesToolCalls(text, ids.Fn());
    EXPECT_TRUE(r.has_content);
    EXPECT_EQ(r.content, text);
    EXPECT_TRUE(r.calls.empty());
  }
  EXPECT_EQ(ids.next, 0);
}

TEST(HermesToolCalls, InvalidCallFallsBackToContent) {
  const std::vector<std::string> texts = {
      "Hi<tool_call>{\"name\": \"f\", \"arguments\": {</tool_call>",  // bad JSON
      "<tool_call>{\"arguments\": {}}</tool_call>",                   // no name
      "<tool_call>{\"name\": 5, \"arguments\": {}}</tool_call>",      // name not a string
      "<tool_call>[\"name\"]</tool_call>",                            // not an object
      "<tool_call></tool_call>",                                      // empty body
      // The second block is bad: the valid first one is dropped too.
      "<tool_call>{\"name\": \"f\"}</tool_call><tool_call>{\"name\": \"g\"</tool_call>",
      // Unterminated last block that does not parse.
      "<tool_call>{\"name\": \"f\"}</tool_call><tool_call>{\"name\": \"g\", \"argum",
      // JSON followed by garbage inside the block.
      "<tool_call>{\"name\": \"f\"} trailing</tool_call>",
  };
  for (const std::string& text : texts) {
    IdGen ids;
    ParsedToolCalls r = ParseHermesToolCalls(text, ids.Fn());
    EXPECT_TRUE(r.has_content) << text;
    EXPECT_EQ(r.content, text);
    EXPECT_TRUE(r.calls.empty()) << text;
    EXPECT_EQ(ids.next, 0) << text;  // no id wasted
  }
}

TEST(HermesToolCalls, ParametersAliasAndMissingArguments) {
  IdGen ids;
  ParsedToolCalls r = ParseHermesToolCalls(
      "<tool_call>{\"name\": \"a\", \"parameters\": {\"q\": [1, 2]}}</tool_call>"
      "<tool_call>{\"name\": \"b\"}</tool_call>"
      "<tool_call>{\"arguments\": {\"k\": \"v\"}, \"name\": \"c\"}</tool_call>",
      ids.Fn());
  ASSERT_EQ(r.calls.size(), 3u);
  EXPECT_EQ(r.calls[0].name, "a");
  EXPECT_EQ(r.calls[0].arguments, R"({"q":[1,2]})");
  EXPECT_EQ(r.calls[1].name, "b");
  EXPECT_EQ(r.calls[1].arguments, "{}");
  EXPECT_EQ(r.calls[2].name, "c");
  EXPECT_EQ(r.calls[2].arguments, R"({"k":"v"})");
}

TEST(HermesToolCalls, UnterminatedLastCall) {
  IdGen ids;
  ParsedToolCalls r = ParseHermesToolCalls(
      "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n"
      "{\"name\": \"g\", \"arguments\": {\"a\": [1, 2]}}\n",
      ids.Fn());
  EXPECT_FALSE(r.has_content);
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[1].name, "g");
  EXPECT_EQ(r.calls[1].arguments, R"({"a":[1,2]})");
}

TEST(HermesToolCalls, UnicodeAndEscapesSurviveDump) {
  IdGen ids;
  ParsedToolCalls r = ParseHermesToolCalls(
      "<tool_call>{\"name\": \"say\", \"arguments\": {\"t\": \"h\xc3\xa9llo \xe4\xb8\xad "
      "\\\"q\\\" \\u00e9 </tool_call>\"}}</tool_call>",
      ids.Fn());
  // The block ends at the first </tool_call>, even inside a string (vLLM's regex): invalid.
  EXPECT_TRUE(r.calls.empty());
  r = ParseHermesToolCalls(
      "<tool_call>{\"name\": \"say\", \"arguments\": {\"t\": \"h\xc3\xa9llo \xe4\xb8\xad "
      "\\\"q\\\" \\u00e9 <tool_call>\"}}</tool_call>",
      ids.Fn());
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].arguments,
            "{\"t\":\"h\xc3\xa9llo \xe4\xb8\xad \\\"q\\\" \xc3\xa9 <tool_call>\"}");
}

// ---------------------------------------------------------------- streaming

struct StreamedCall {
  std::string id, name, arguments;
  int headers = 0;  // deltas carrying id/name
};
struct Streamed {
  std::string content;
  std::vector<StreamedCall> calls;  // by index
  bool saw_tool_call = false;
};

// Feeds `pieces`, then Finish(); checks the delta invariants and gathers the result.
Streamed RunStream(const std::vector<std::string>& pieces) {
  IdGen ids;
  HermesToolStreamParser parser(ids.Fn());
  Streamed s;
  auto take = [&](const StreamDelta& d) {
    s.content += d.content;
    for (const ToolCallDelta& t : d.tool_calls) {
      if (!t.id.empty() || !t.name.empty()) {
        // A header: the next index, with id and name and no arguments.
        EXPECT_EQ(t.index, static_cast<int>(s.calls.size()));
        EXPECT_TRUE(IsToolId(t.id)) << t.id;
        EXPECT_FALSE(t.name.empty());
        EXPECT_TRUE(t.arguments.empty());
        s.calls.push_back(StreamedCall{t.id, t.name, "", 1});
      } else {
        // A fragment: of a call whose header came already, non-empty.
        EXPECT_GE(t.index, 0);
        EXPECT_LT(t.index, static_cast<int>(s.calls.size()));
        EXPECT_FALSE(t.arguments.empty());
        if (t.index >= 0 && t.index < static_cast<int>(s.calls.size())) {
          s.calls[t.index].arguments += t.arguments;
        }
      }
    }
  };
  for (const std::string& p : pieces) take(parser.Feed(p));
  take(parser.Finish());
  s.saw_tool_call = parser.saw_tool_call();
  std::set<std::string> unique;
  for (const StreamedCall& c : s.calls) unique.insert(c.id);
  EXPECT_EQ(unique.size(), s.calls.size());
  return s;
}

std::vector<std::vector<std::string>> Chunkings(const std::string& text) {
  std::vector<std::vector<std::string>> out;
  out.push_back({text});
  std::vector<std::string> bytes;
  for (char c : text) bytes.push_back(std::string(1, c));
  out.push_back(bytes);
  for (size_t i = 0; i <= text.size(); ++i) out.push_back({text.substr(0, i), text.substr(i)});
  std::mt19937 rng(1234);
  std::uniform_int_distribution<size_t> len(1, 9);
  for (int round = 0; round < 100; ++round) {
    std::vector<std::string> pieces;
    for (size_t i = 0; i < text.size();) {
      size_t n = len(rng);
      pieces.push_back(text.substr(i, n));
      i += n;
    }
    out.push_back(pieces);
  }
  return out;
}

struct Case {
  std::string text;
  std::string content;                                     // expected streamed content
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments JSON
};

// Every chunking of every case gives the same content and calls. Where the case has no text
// after its calls, the non-streaming parser must agree with it too.
void CheckStreaming(const Case& c, bool compare_non_streaming) {
  if (compare_non_streaming) {
    IdGen ids;
    ParsedToolCalls r = ParseHermesToolCalls(c.text, ids.Fn());
    EXPECT_EQ(r.content, c.content) << c.text;
    ASSERT_EQ(r.calls.size(), c.calls.size()) << c.text;
    for (size_t i = 0; i < r.calls.size(); ++i) {
      EXPECT_EQ(r.calls[i].name, c.calls[i].first);
      EXPECT_EQ(json::parse(r.calls[i].arguments), json::parse(c.calls[i].second));
    }
  }
  for (const auto& pieces : Chunkings(c.text)) {
    Streamed s = RunStream(pieces);
    std::string where = c.text + " | pieces: " + std::to_string(pieces.size());
    EXPECT_EQ(s.content, c.content) << where;
    EXPECT_EQ(s.saw_tool_call, !c.calls.empty()) << where;
    ASSERT_EQ(s.calls.size(), c.calls.size()) << where;
    for (size_t i = 0; i < s.calls.size(); ++i) {
      EXPECT_EQ(s.calls[i].headers, 1);
      EXPECT_EQ(s.calls[i].name, c.calls[i].first) << where;
      json got = json::parse(s.calls[i].arguments, nullptr, false);
      ASSERT_FALSE(got.is_discarded()) << where << " args: " << s.calls[i].arguments;
      EXPECT_EQ(got, json::parse(c.calls[i].second)) << where;
    }
    if (testing::Test::HasFailure()) return;  // one failing chunking is enough output
  }
}

TEST(HermesToolStream, EveryChunkingMatchesNonStreaming) {
  const std::vector<Case> cases = {
      {"Some optional text<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
       "\"Paris\", \"unit\": \"c\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"f2\", "
       "\"arguments\": {}}\n</tool_call>",
       "Some optional text",
       {{"get_weather", R"({"city":"Paris","unit":"c"})"}, {"f2", "{}"}}},
      {"\n\n<tool_call>\n{\"name\": \"a\", \"parameters\": {\"q\": [1, [2, {\"x\": null}]], "
       "\"n\": -1.5e3, \"b\": true}}\n</tool_call>\n\n<tool_call>{\"name\":\"b\"}</tool_call>",
       "",
       {{"a", R"({"q":[1,[2,{"x":null}]],"n":-1.5e3,"b":true})"}, {"b", "{}"}}},
      // Strings holding braces, escapes, tags and multi-byte UTF-8; arguments first.
      {"Let me check.\n\n<tool_call>\n{\"arguments\": {\"code\": \"if (a < b) { return "
       "\\\"}\\\"; } // <tool_call> </tool\", \"u\": \"h\xc3\xa9llo \xe4\xb8\xad\xe6\x96\x87 "
       "\xf0\x9f\x8e\x89\", \"e\": \"a\\\\\\\"b\\\\\"}, \"id\": {\"skip\": [\"}\"]}, \"name\": "
       "\"run_\\u0063ode\"}\n</tool_call>",
       "Let me check.\n\n",
       {{"run_code",
         "{\"code\": \"if (a < b) { return \\\"}\\\"; } // <tool_call> </tool\", \"u\": "
         "\"h\xc3\xa9llo \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x8e\x89\", \"e\": "
         "\"a\\\\\\\"b\\\\\"}"}}},
      // Unterminated last call.
      {"<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": [1, 2]}}\n",
       "",
       {{"f", R"({"a":[1,2]})"}}},
      // No calls: '<' that are not tags are content, whitespace included.
      {"if a < b and c <tool or <tool_call or </tool_call> then <",
       "if a < b and c <tool or <tool_call or </tool_call> then <",
       {}},
      {"  \n\t", "  \n\t", {}},
      {"", "", {}},
      {"<", "<", {}},
  };
  for (const Case& c : cases) CheckStreaming(c, /*compare_non_streaming=*/true);
}

TEST(HermesToolStream, TextAfterCallsIsStreamed) {
  // Non-streaming ignores it; streaming sends non-blank runs between/after calls verbatim.
  CheckStreaming({"<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": 1}}</tool_call>\n  \n"
                  "<tool_call>{\"name\": \"g\", \"arguments\": {}}</tool_call>\n\nDone < 3.\n",
                  "\n\nDone < 3.\n",
                  {{"f", R"({"x":1})"}, {"g", "{}"}}},
                 /*compare_non_streaming=*/false);
  CheckStreaming({"A<tool_call>{\"name\": \"f\"}</tool_call> \n", "A", {{"f", "{}"}}},
                 /*compare_non_streaming=*/true);
}

TEST(HermesToolStream, HoldsBackOnlyPossibleTags) {
  IdGen ids;
  HermesToolStreamParser p(ids.Fn());
  StreamDelta d = p.Feed("a <");
  EXPECT_EQ(d.content, "a ");
  d = p.Feed(" b<tool");
  EXPECT_EQ(d.content, "< b");
  d = p.Feed("s>\n");
  EXPECT_EQ(d.content, "<tools>\n");
  d = p.Feed("<tool_call>\n{\"name\": \"f");
  EXPECT_TRUE(d.empty());
  EXPECT_FALSE(p.saw_tool_call());
  d = p.Feed("\", \"arguments\": {\"a\": \"<");
  EXPECT_TRUE(d.content.empty());
  ASSERT_EQ(d.tool_calls.size(), 2u);
  EXPECT_EQ(d.tool_calls[0].index, 0);
  EXPECT_EQ(d.tool_calls[0].id, "chatcmpl-tool-00000000000000000000000000000000");
  EXPECT_EQ(d.tool_calls[0].name, "f");
  EXPECT_EQ(d.tool_calls[0].arguments, "");
  EXPECT_EQ(d.tool_calls[1].index, 0);
  EXPECT_EQ(d.tool_calls[1].id, "");
  EXPECT_EQ(d.tool_calls[1].name, "");
  EXPECT_EQ(d.tool_calls[1].arguments, "{\"a\": \"");  // '<' held: may start </tool_call>
  EXPECT_TRUE(p.saw_tool_call());
  d = p.Feed("/b\"");
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].arguments, "</b\"");
  d = p.Feed(" }");
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].arguments, " }");
  d = p.Feed("}\n</tool_call>");
  EXPECT_TRUE(d.empty());
  d = p.Feed("\n");
  EXPECT_TRUE(d.empty());
  d = p.Finish();
  EXPECT_TRUE(d.empty());
}

TEST(HermesToolStream, SeveralWholeCallsInOneChunk) {
  IdGen ids;
  HermesToolStreamParser p(ids.Fn());
  StreamDelta d = p.Feed(
      "Hi <tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool_call>\n"
      "<tool_call>\n{\"name\": \"b\"}\n</tool_call>\n<tool_call>{\"arguments\": [1], "
      "\"name\": \"c\"}</tool_call>");
  EXPECT_EQ(d.content, "Hi ");
  ASSERT_EQ(d.tool_calls.size(), 6u);
  const std::vector<std::tuple<int, std::string, std::string, std::string>> want = {
      {0, "chatcmpl-tool-00000000000000000000000000000000", "a", ""}, {0, "", "", "{\"x\": 1}"},
      {1, "chatcmpl-tool-00000000000000000000000000000001", "b", ""}, {1, "", "", "{}"},
      {2, "chatcmpl-tool-00000000000000000000000000000002", "c", ""}, {2, "", "", "[1]"},
  };
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(d.tool_calls[i].index, std::get<0>(want[i])) << i;
    EXPECT_EQ(d.tool_calls[i].id, std::get<1>(want[i])) << i;
    EXPECT_EQ(d.tool_calls[i].name, std::get<2>(want[i])) << i;
    EXPECT_EQ(d.tool_calls[i].arguments, std::get<3>(want[i])) << i;
  }
  EXPECT_TRUE(p.Finish().empty());
  EXPECT_TRUE(p.saw_tool_call());
}

TEST(HermesToolStream, MalformedBodiesNeverThrow) {
  // Bodies without a usable name emit nothing and take no index; text after them streams.
  for (const std::string text :
       {"<tool_call>garbage</tool_call>after", "<tool_call>{\"name\": 5}</tool_call>after",
        "<tool_call>{\"arguments\": {\"a\": 1}}</tool_call>after",
        "<tool_call>{\"na\\q\": \"f\"}</tool_call>after", "<tool_call>{,}</tool_call>after",
        "<tool_call>{\"name\" \"f\"}</tool_call>after"}) {
    for (const auto& pieces : Chunkings(text)) {
      Streamed s;
      EXPECT_NO_THROW(s = RunStream(pieces)) << text;
      EXPECT_EQ(s.content, "after") << text;
      EXPECT_TRUE(s.calls.empty()) << text;
      EXPECT_FALSE(s.saw_tool_call);
    }
  }
  // A complete name with truncated arguments: header and what arrived, no "{}".
  for (const std::string text : {"<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": </tool_call>",
                                 "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": "}) {
    for (const auto& pieces : Chunkings(text)) {
      Streamed s = RunStream(pieces);
      ASSERT_EQ(s.calls.size(), 1u) << text;
      EXPECT_EQ(s.calls[0].name, "f");
      EXPECT_EQ(s.calls[0].arguments, "{\"a\": ");
    }
  }
  // Garbage after the wrapper object is ignored.
  Streamed s = RunStream({"<tool_call>{\"name\": \"f\", \"arguments\": 7} junk {</tool_call>"});
  ASSERT_EQ(s.calls.size(), 1u);
  EXPECT_EQ(s.calls[0].arguments, "7");
}

}  // namespace
}  // namespace c8
