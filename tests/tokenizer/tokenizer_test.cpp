// Tokenizer tests: fixtures produced by tools/make_tokenizer_fixtures.py with the Python
// `tokenizers` library (SmolLM2's converted tokenizer.json, and a small Qwen-style one committed
// under tests/data/tokenizer/), streaming decode, concurrency, and load errors.
#include "c8/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "c8/tokenizer/byte_level.h"
#include "c8/tokenizer/pre_tokenizer.h"
#include "c8/tokenizer/stream_decoder.h"
#include "c8/tokenizer/utf8.h"

namespace c8 {
namespace {

namespace fs = std::filesystem;

std::string DataDir() {
  return std::string(C8_SOURCE_DIR) + "/tests/data/tokenizer";
}

// The converted SmolLM2 model dir: $C8_SMOLLM2_DIR, else <source>/models/smollm2-135m-instruct.
std::string SmolTokenizerPath() {
  const char* env = std::getenv("C8_SMOLLM2_DIR");
  const std::string dir =
      env && *env ? std::string(env) : std::string(C8_SOURCE_DIR) + "/models/smollm2-135m-instruct";
  return dir + "/tokenizer.json";
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Base64Decode(const std::string& in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = val(c);
    if (v < 0) continue;  // '=' padding
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

struct Case {
  std::string input;  // raw bytes
  bool parse_special = true;
  std::vector<int32_t> ids;
  std::string decoded;       // Decode(ids, false)
  std::string decoded_skip;  // Decode(ids, true)
};

std::vector<Case> ParseCases(const nlohmann::json& list) {
  std::vector<Case> cases;
  for (const auto& c : list) {
    Case k;
    k.input =
        c.contains("t") ? c["t"].get<std::string>() : Base64Decode(c["b64"].get<std::string>());
    k.parse_special = c.value("ps", true);
    k.ids = c["ids"].get<std::vector<int32_t>>();
    k.decoded = c.contains("dec") ? c["dec"].get<std::string>() : SanitizeUtf8(k.input);
    k.decoded_skip = c.contains("decs") ? c["decs"].get<std::string>() : k.decoded;
    cases.push_back(std::move(k));
  }
  return cases;
}

std::vector<Case> LoadCases(const std::string& path) {
  return ParseCases(nlohmann::json::parse(ReadFile(path)).at("cases"));
}

std::string Show(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s + "]";
}

std::string StreamDecode(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip) {
  StreamDecoder dec(tok, skip);
  std::string out;
  for (int32_t id : ids) {
    const std::string piece = dec.Push(id);
    EXPECT_EQ(SanitizeUtf8(piece), piece) << "Push returned invalid UTF-8";
    out += piece;
  }
  return out + dec.Flush();
}

// Checks every fixture case; reports at most a few mismatches of each kind in detail.
void CheckFixtures(const Tokenizer& tok, const std::vector<Case>& cases) {
  int encode_bad = 0, decode_bad = 0, stream_bad = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const std::vector<int32_t> ids = tok.Encode(c.input, c.parse_special);
    if (ids != c.ids && ++encode_bad <= 5) {
      ADD_FAILURE() << "case " << i << " encode mismatch for '" << c.input << "'\n  got      "
                    << Show(ids) << "\n  expected " << Show(c.ids);
    }
    const std::string dec = tok.Decode(c.ids, false);
    const std::string decs = tok.Decode(c.ids, true);
    if ((dec != c.decoded || decs != c.decoded_skip) && ++decode_bad <= 5) {
      ADD_FAILURE() << "case " << i << " decode mismatch: got '" << dec << "' / '" << decs
                    << "', expected '" << c.decoded << "' / '" << c.decoded_skip << "'";
    }
    if ((StreamDecode(tok, c.ids, false) != dec || StreamDecode(tok, c.ids, true) != decs) &&
        ++stream_bad <= 5) {
      ADD_FAILURE() << "case " << i << " streaming decode differs from Decode";
    }
  }
  EXPECT_EQ(encode_bad, 0) << "of " << cases.size() << " cases";
  EXPECT_EQ(decode_bad, 0) << "of " << cases.size() << " cases";
  EXPECT_EQ(stream_bad, 0) << "of " << cases.size() << " cases";
}

class SmolTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = SmolTokenizerPath();
    if (!fs::exists(path_)) {
      GTEST_SKIP() << "SmolLM2 tokenizer.json not found at " << path_
                   << " (convert the model or set C8_SMOLLM2_DIR)";
    }
    auto tok = Tokenizer::FromFile(path_);
    ASSERT_TRUE(tok.ok()) << tok.message();
    tok_.emplace(std::move(tok).value());
  }
  std::string path_;
  std::optional<Tokenizer> tok_;
};

TEST_F(SmolTokenizerTest, FixturesMatchHuggingFaceTokenizers) {
  const auto cases = LoadCases(DataDir() + "/smollm2_fixtures.json");
  ASSERT_GE(cases.size(), 1000u);
  CheckFixtures(*tok_, cases);
}

TEST_F(SmolTokenizerTest, VocabularyAndSpecialTokens) {
  const Tokenizer& t = *tok_;
  EXPECT_EQ(t.vocab_size(), 49152);
  EXPECT_EQ(t.TokenToId("<|im_start|>"), 1);
  EXPECT_EQ(t.TokenToId("<|im_end|>"), 2);
  EXPECT_EQ(t.TokenToId("no such token"), -1);
  EXPECT_EQ(t.IdToToken(1), "<|im_start|>");
  EXPECT_EQ(t.IdToToken(t.TokenToId("Ġworld")), "Ġworld");
  EXPECT_EQ(t.IdToToken(-1), "");
  EXPECT_EQ(t.IdToToken(1 << 30), "");
  EXPECT_TRUE(t.IsSpecial(1));
  EXPECT_FALSE(t.IsSpecial(t.TokenToId("Ġworld")));
  EXPECT_FALSE(t.IsSpecial(-5));

  const std::vector<int32_t> ids = t.Encode("<|im_start|>user\nHi<|im_end|>");
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(ids.back(), 2);
  EXPECT_EQ(t.Decode(ids), "<|im_start|>user\nHi<|im_end|>");
  EXPECT_EQ(t.Decode(ids, /*skip_special=*/true), "user\nHi");
  // Not parsing specials: the marker is plain text.
  const std::vector<int32_t> plain = t.Encode("<|im_start|>", /*parse_special=*/false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  EXPECT_EQ(t.Decode(plain), "<|im_start|>");
  // Unknown ids are skipped by Decode.
  const std::vector<int32_t> with_bad = {ids[0], -3, 1 << 29, ids[1]};
  EXPECT_EQ(t.Decode(with_bad), t.Decode(std::vector<int32_t>{ids[0], ids[1]}));
}

TEST_F(SmolTokenizerTest, InvalidUtf8NeverCrashesAndRoundTripsAsReplacement) {
  // Bytes whose byte-level symbol is in the vocabulary (as in HF, a character without a token,
  // such as some control bytes in SmolLM2, is dropped by BPE).
  std::vector<char> bytes;
  for (int b = 0; b < 256; ++b) {
    std::string sym;
    ByteLevelEncode(std::string(1, static_cast<char>(b)), &sym);
    if (tok_->TokenToId(sym) >= 0) bytes.push_back(static_cast<char>(b));
  }
  ASSERT_GT(bytes.size(), 200u);
  std::mt19937 rng(7);
  for (int n = 0; n < 300; ++n) {
    std::string s(rng() % 40, '\0');
    for (char& ch : s) ch = bytes[rng() % bytes.size()];
    const std::vector<int32_t> ids = tok_->Encode(s);
    // No normalizer: decoding gives back the input with invalid bytes as U+FFFD.
    EXPECT_EQ(tok_->Decode(ids), SanitizeUtf8(s));
    EXPECT_EQ(StreamDecode(*tok_, ids, false), tok_->Decode(ids));
  }
}

TEST_F(SmolTokenizerTest, LongInputsRoundTrip) {
  std::string mixed;
  while (mixed.size() < 200000)
    mixed += "The quick brown fox, 12345 times!\n\tdef f(x): return x**2  ";
  const std::vector<std::string> inputs = {mixed,
                                           std::string(100000, ' '),
                                           std::string(100000, '\n'),
                                           std::string(100000, 'a'),
                                           std::string(50000, '7'),
                                           std::string(30000, '!')};
  for (const std::string& s : inputs) {
    const std::vector<int32_t> ids = tok_->Encode(s);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(tok_->Decode(ids), s)
        << "input of " << s.size() << " bytes starting '" << s.substr(0, 10) << "'";
  }
}

TEST_F(SmolTokenizerTest, StreamingHoldsBackPartialCharacters) {
  // "😀" is three byte-level tokens in SmolLM2; nothing is emitted until the last one.
  const std::vector<int32_t> ids = tok_->Encode("a😀");
  ASSERT_GE(ids.size(), 3u);
  StreamDecoder dec(*tok_);
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string piece = dec.Push(ids[i]);
    if (i + 1 < ids.size() && i > 0) {
      EXPECT_EQ(piece, "") << "token " << i;
      EXPECT_GT(dec.pending_bytes(), 0u);
    }
    out += piece;
  }
  EXPECT_EQ(out, "a😀");
  EXPECT_EQ(dec.Flush(), "");
  // A sequence cut short: Flush gives U+FFFD, as Decode does.
  StreamDecoder cut(*tok_);
  std::string text;
  for (size_t i = 0; i + 1 < ids.size(); ++i) text += cut.Push(ids[i]);
  text += cut.Flush();
  std::vector<int32_t> prefix(ids.begin(), ids.end() - 1);
  EXPECT_EQ(text, tok_->Decode(prefix));
  EXPECT_EQ(text, "a\xEF\xBF\xBD");
}

TEST(QwenStyleTokenizerTest, FixturesMatchHuggingFaceTokenizers) {
  auto tok = Tokenizer::FromFile(DataDir() + "/qwen_style_tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.message();
  const auto cases = LoadCases(DataDir() + "/qwen_style_fixtures.json");
  ASSERT_GE(cases.size(), 300u);
  CheckFixtures(*tok, cases);
}

// The Qwen-style vocabulary under other normalizers / pre-tokenizers (Split behaviours, Digits,
// GPT-2 ByteLevel regex, Llama-3 regex, NFD/NFKC, none).
TEST(VariantTokenizerTest, FixturesMatchHuggingFaceTokenizers) {
  nlohmann::json base = nlohmann::json::parse(ReadFile(DataDir() + "/qwen_style_tokenizer.json"));
  const nlohmann::json fixtures =
      nlohmann::json::parse(ReadFile(DataDir() + "/variant_fixtures.json"));
  ASSERT_GE(fixtures.at("variants").size(), 9u);
  for (const auto& v : fixtures.at("variants")) {
    SCOPED_TRACE("normalizer " + v["normalizer"].dump() + ", pre_tokenizer " +
                 v["pre_tokenizer"].dump());
    base["normalizer"] = v["normalizer"];
    base["pre_tokenizer"] = v["pre_tokenizer"];
    auto tok = Tokenizer::FromJsonString(base.dump(), "variant tokenizer.json");
    ASSERT_TRUE(tok.ok()) << tok.message();
    CheckFixtures(*tok, ParseCases(v["cases"]));
  }
}

TEST(QwenStyleTokenizerTest, AddedTokenFlags) {
  auto r = Tokenizer::FromFile(DataDir() + "/qwen_style_tokenizer.json");
  ASSERT_TRUE(r.ok()) << r.message();
  const Tokenizer& t = *r;
  const int32_t mask = t.TokenToId("[MASK]");
  const int32_t hello = t.TokenToId("hello");
  ASSERT_GE(mask, 0);
  ASSERT_GE(hello, 0);
  EXPECT_TRUE(t.IsSpecial(mask));
  EXPECT_FALSE(t.IsSpecial(hello));
  // lstrip + rstrip: the spaces around [MASK] belong to it.
  const auto a = t.Encode("x   [MASK]   y");
  const auto b = t.Encode("x[MASK]y");
  EXPECT_EQ(a, b);
  // single_word: only a whole word matches.
  const auto w = t.Encode("hello world");
  EXPECT_EQ(w.front(), hello);
  const auto s = t.Encode("sayhello");
  EXPECT_EQ(std::count(s.begin(), s.end(), hello), 0);
  // normalized: the decomposed spelling matches after NFC.
  const int32_t cafe = t.TokenToId("cafe\u0301");
  ASSERT_GE(cafe, 0);
  EXPECT_EQ(t.Encode("caf\u00e9"), std::vector<int32_t>{cafe});
}

TEST(TokenizerConcurrencyTest, ThreadsEncodeTheSame) {
  std::vector<std::pair<std::string, std::string>> sets = {
      {DataDir() + "/qwen_style_tokenizer.json", DataDir() + "/qwen_style_fixtures.json"}};
  if (fs::exists(SmolTokenizerPath())) {
    sets.emplace_back(SmolTokenizerPath(), DataDir() + "/smollm2_fixtures.json");
  }
  for (const auto& [tok_path, fix_path] : sets) {
    auto tok = Tokenizer::FromFile(tok_path);
    ASSERT_TRUE(tok.ok()) << tok.message();
    const auto cases = LoadCases(fix_path);
    constexpr int kThreads = 6;
    std::vector<int> failures(kThreads, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::vector<size_t> order(cases.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::shuffle(order.begin(), order.end(), std::mt19937(t));
        for (size_t i : order) {
          if (tok->Encode(cases[i].input, cases[i].parse_special) != cases[i].ids) ++failures[t];
          if (tok->Decode(cases[i].ids) != cases[i].decoded) ++failures[t];
        }
      });
    }
    for (auto& th : threads) th.join();
    for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << tok_path << " thread " << t;
  }
}

// --- Load errors -----------------------------------------------------------------------------

class BadTokenizerJsonTest : public ::testing::Test {
 protected:
  // Writes `text` to a temporary tokenizer.json and loads it.
  Result<Tokenizer> Load(const std::string& text) {
    path_ = ::testing::TempDir() + "/c8_bad_tokenizer_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".json";
    std::ofstream(path_, std::ios::binary) << text;
    return Tokenizer::FromFile(path_);
  }
  void TearDown() override {
    if (!path_.empty()) std::remove(path_.c_str());
  }
  // A minimal valid byte-level tokenizer.json with `patch` merged in.
  static std::string Minimal(const nlohmann::json& patch) {
    nlohmann::json j = {{"version", "1.0"},
                        {"added_tokens", nlohmann::json::array()},
                        {"normalizer", nullptr},
                        {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
                        {"decoder", {{"type", "ByteLevel"}}},
                        {"model",
                         {{"type", "BPE"},
                          {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}},
                          {"merges", nlohmann::json::array({"a b"})}}}};
    j.merge_patch(patch);
    return j.dump();
  }
  std::string path_;
};

TEST_F(BadTokenizerJsonTest, MinimalLoadsAndMerges) {
  auto t = Load(Minimal(nlohmann::json::object()));
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_EQ(t->Encode("abab"), (std::vector<int32_t>{2, 2}));
  EXPECT_EQ(t->Encode("ba"), (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(t->Decode(std::vector<int32_t>{2, 0}), "aba");
  nlohmann::json pair_merges = nlohmann::json::array({nlohmann::json::array({"a", "b"})});
  auto pairs = Load(Minimal({{"model", {{"merges", pair_merges}}}}));
  ASSERT_TRUE(pairs.ok()) << pairs.message();
  EXPECT_EQ(pairs->Encode("ab"), (std::vector<int32_t>{2}));
}

TEST_F(BadTokenizerJsonTest, MissingFile) {
  const std::string path = ::testing::TempDir() + "/c8_no_such_dir/tokenizer.json";
  auto t = Tokenizer::FromFile(path);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.message().find(path), std::string::npos) << t.message();
}

TEST_F(BadTokenizerJsonTest, MalformedJson) {
  auto t = Load("{\"model\": {\"vocab\": {\"a\": 0,}");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.message().find(path_), std::string::npos) << t.message();
  EXPECT_NE(t.message().find("malformed JSON"), std::string::npos) << t.message();
}

TEST_F(BadTokenizerJsonTest, MissingModelVocab) {
  auto t = Load(Minimal({{"model", {{"vocab", nullptr}}}}));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.message().find(path_), std::string::npos) << t.message();
  EXPECT_NE(t.message().find("model.vocab"), std::string::npos) << t.message();
}

TEST_F(BadTokenizerJsonTest, MissingModel) {
  nlohmann::json j = nlohmann::json::parse(Minimal(nlohmann::json::object()));
  j.erase("model");
  auto t = Load(j.dump());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.message().find(": model"), std::string::npos) << t.message();
}

TEST_F(BadTokenizerJsonTest, UnknownPreTokenizerType) {
  auto t = Load(Minimal({{"pre_tokenizer",
                          {{"type", "Sequence"},
                           {"pretokenizers", {{{"type", "Digits"}}, {{"type", "Frobnicate"}}}}}}}));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.message().find(path_), std::string::npos) << t.message();
  EXPECT_NE(t.message().find("pre_tokenizer.pretokenizers[1].type"), std::string::npos)
      << t.message();
  EXPECT_NE(t.message().find("Frobnicate"), std::string::npos) << t.message();
}

TEST_F(BadTokenizerJsonTest, UnsupportedComponents) {
  struct Bad {
    nlohmann::json patch;
    std::string field;
  };
  const std::vector<Bad> bads = {
      {{{"normalizer", {{"type", "Lowercase"}}}}, "normalizer.type"},
      {{{"decoder", {{"type", "WordPiece"}}}}, "decoder.type"},
      {{{"model", {{"type", "WordPiece"}}}}, "model.type"},
      {{{"model", {{"dropout", 0.1}}}}, "model.dropout"},
      {{{"model", {{"merges", {"a c"}}}}}, "model.merges[0]"},
      {{{"model", {{"merges", {"ab"}}}}}, "model.merges[0]"},
      {{{"model", {{"merges", {"b a"}}}}}, "model.merges[0]"},  // "ba" not in vocab
      {{{"pre_tokenizer",
         {{"type", "Split"},
          {"pattern", {{"Regex", "(unclosed"}}},
          {"behavior", "Isolated"},
          {"invert", false}}}},
       "pre_tokenizer.pattern"},
      {{{"pre_tokenizer",
         {{"type", "Split"},
          {"pattern", {{"Regex", "a"}}},
          {"behavior", "Sideways"},
          {"invert", false}}}},
       "pre_tokenizer.behavior"},
      {{{"post_processor", {{"type", "TemplateProcessing"}}}}, "post_processor"},
      {{{"added_tokens", {{{"content", 5}}}}}, "added_tokens[0].content"},
      {{{"truncation", {{"max_length", 5}}}}, "truncation"},
  };
  for (const Bad& b : bads) {
    auto t = Load(Minimal(b.patch));
    ASSERT_FALSE(t.ok()) << b.patch.dump();
    EXPECT_NE(t.message().find(path_ + ": " + b.field), std::string::npos)
        << b.patch.dump() << " -> " << t.message();
  }
}

// --- Pieces ----------------------------------------------------------------------------------

TEST(Utf8Test, LossyMatchesUnicodeMaximalSubparts) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(SanitizeUtf8("abc"), "abc");
  EXPECT_EQ(SanitizeUtf8("\xC3\xA9"), "\xC3\xA9");
  EXPECT_EQ(SanitizeUtf8("\xFF"), r);
  EXPECT_EQ(SanitizeUtf8("\xE2\x82"), r);  // truncated: one replacement
  EXPECT_EQ(SanitizeUtf8("\xE2\x82x"), r + "x");
  EXPECT_EQ(SanitizeUtf8("\xF0\x80\x80"), r + r + r);  // invalid second byte
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), r + r + r);  // surrogate
  EXPECT_EQ(SanitizeUtf8("\xC0\xAF"), r + r);          // overlong
  EXPECT_EQ(SanitizeUtf8(std::string("a\0b", 3)), std::string("a\0b", 3));
  std::string out;
  EXPECT_EQ(AppendUtf8Lossy("ab\xF0\x9F\x98", /*final=*/false, &out), 2u);
  EXPECT_EQ(out, "ab");
  out.clear();
  EXPECT_EQ(AppendUtf8Lossy("ab\xF0\x9F\x28", /*final=*/false, &out), 5u);
  EXPECT_EQ(out, "ab" + r + "(");
}

TEST(PreTokenizerTest, OnigWhitespaceTranslation) {
  const std::string p = OnigToPcre2Pattern(R"(\s+(?!\S)|[^\s\p{L}]|\\s|[\]\s])");
  EXPECT_EQ(p.find("\\s"), p.find("\\\\s") + 1) << p;  // only the escaped backslash remains
  EXPECT_EQ(p.find("\\S"), std::string::npos) << p;
}

}  // namespace
}  // namespace c8
