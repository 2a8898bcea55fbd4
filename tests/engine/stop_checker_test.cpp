// Tests for StopChecker: stop strings over streamed text, EOS / stop tokens, min/max tokens.
#include "c8/engine/stop_checker.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace c8 {
namespace {

constexpr int32_t kEos = 2;

// Feeds (token, text) pairs and concatenates the streamed deltas.
struct Feed {
  StopChecker checker;
  std::string streamed;
  StopUpdate last;

  Feed(const SamplingParams& p, std::optional<int64_t> limit = std::nullopt)
      : checker(p, {kEos}, limit) {}
  StopUpdate Add(int32_t token, std::string_view text) {
    last = checker.Append(token, text);
    streamed += last.delta;
    return last;
  }
};

TEST(StopCheckerTest, FinishReasonNames) {
  EXPECT_STREQ(FinishReasonName(FinishReason::kStop), "stop");
  EXPECT_STREQ(FinishReasonName(FinishReason::kLength), "length");
  EXPECT_STREQ(FinishReasonName(FinishReason::kNone), "");
}

TEST(StopCheckerTest, PartialStopLength) {
  const std::vector<std::string> stops = {"###", "STOP"};
  EXPECT_EQ(StopChecker::PartialStopLength("abc", stops), 0u);
  EXPECT_EQ(StopChecker::PartialStopLength("abc#", stops), 1u);
  EXPECT_EQ(StopChecker::PartialStopLength("abc##", stops), 2u);
  EXPECT_EQ(StopChecker::PartialStopLength("abc ST", stops), 2u);
  EXPECT_EQ(StopChecker::PartialStopLength("abc STO", stops), 3u);
  EXPECT_EQ(StopChecker::PartialStopLength("S", stops), 1u);
  EXPECT_EQ(StopChecker::PartialStopLength("", stops), 0u);
  // A complete stop string is not a *proper* prefix.
  EXPECT_EQ(StopChecker::PartialStopLength("STOP", stops), 0u);
  EXPECT_EQ(StopChecker::PartialStopLength("abc#", std::vector<std::string>{}), 0u);
}

TEST(StopCheckerTest, StopStringSpanningTokensIsHeldBackAndCut) {
  SamplingParams p;
  p.stop = {"###"};
  Feed f(p);
  EXPECT_EQ(f.Add(10, "Hello").delta, "Hello");
  EXPECT_EQ(f.Add(11, " wor").delta, " wor");
  StopUpdate u = f.Add(12, "ld#");
  EXPECT_EQ(u.delta, "ld");  // '#' could start "###"
  EXPECT_EQ(u.held_back, 1u);
  EXPECT_EQ(u.finish_reason, FinishReason::kNone);
  u = f.Add(13, "#");
  EXPECT_EQ(u.delta, "");
  EXPECT_EQ(u.held_back, 2u);
  u = f.Add(14, "# and more");
  EXPECT_EQ(u.finish_reason, FinishReason::kStop);
  EXPECT_EQ(std::get<std::string>(u.stop_reason), "###");
  EXPECT_EQ(u.delta, "");
  EXPECT_EQ(u.held_back, 0u);
  EXPECT_EQ(f.checker.text(), "Hello world");
  EXPECT_EQ(f.streamed, "Hello world");
  EXPECT_TRUE(f.checker.finished());
  EXPECT_EQ(f.checker.num_tokens(), 5);

  // Further tokens change nothing.
  u = f.Add(15, "zzz");
  EXPECT_EQ(u.finish_reason, FinishReason::kStop);
  EXPECT_EQ(u.delta, "");
  EXPECT_EQ(f.checker.text(), "Hello world");
  EXPECT_EQ(f.checker.num_tokens(), 5);
}

TEST(StopCheckerTest, IncludeStopStrInOutput) {
  SamplingParams p;
  p.stop = {"###"};
  p.include_stop_str_in_output = true;
  Feed f(p);
  f.Add(10, "Hello world#");
  f.Add(11, "#");
  StopUpdate u = f.Add(12, "# and more");
  EXPECT_EQ(u.finish_reason, FinishReason::kStop);
  EXPECT_EQ(u.delta, "###");
  EXPECT_EQ(f.checker.text(), "Hello world###");
  EXPECT_EQ(f.streamed, "Hello world###");
}

TEST(StopCheckerTest, HeldBackTextIsReleasedWhenNoStopFollows) {
  SamplingParams p;
  p.stop = {"STOP"};
  Feed f(p);
  StopUpdate u = f.Add(1, "ab ST");
  EXPECT_EQ(u.delta, "ab ");
  EXPECT_EQ(u.held_back, 2u);
  u = f.Add(1, "O");
  EXPECT_EQ(u.delta, "");
  EXPECT_EQ(u.held_back, 3u);
  u = f.Add(1, "RM");  // "STORM" is not a stop
  EXPECT_EQ(u.delta, "STORM");
  EXPECT_EQ(u.held_back, 0u);
  EXPECT_EQ(u.finish_reason, FinishReason::kNone);
  // A held-back tail is flushed when the sequence ends for another reason.
  f.Add(1, " S");
  EXPECT_EQ(f.last.held_back, 1u);
  u = f.Add(kEos, "");
  EXPECT_EQ(u.finish_reason, FinishReason::kStop);
  EXPECT_EQ(u.delta, "S");
  EXPECT_EQ(f.streamed, "ab STORM S");
}

TEST(StopCheckerTest, StopInsideOneChunkAndFirstCompletingStopWins) {
  SamplingParams p;
  p.stop = {"</s>", "\n\n"};
  Feed f(p);
  StopUpdate u = f.Add(1, "foo</s>bar");
  EXPECT_EQ(u.finish_reason, FinishReason::kStop);
  EXPECT_EQ(std::get<std::string>(u.stop_reason), "</s>");
  EXPECT_EQ(f.checker.text(), "foo");
  EXPECT_EQ(f.streamed, "foo");

  // Both "abcd" and "bc" occur in the chunk; "bc" completes first (end offset 3 < 4).
  p.stop = {"abcd", "bc"};
  Feed g(p);
  u = g.Add(1, "xabcdy");
  EXPECT_EQ(std::get<std::string>(u.stop_reason), "bc");
  EXPECT_EQ(g.checker.text(), "xa");
  // Same end: the longer (earlier starting) one wins.
  p.stop = {"c", "abc"};
  Feed h(p);
  u = h.Add(1, "xabcd");
  EXPECT_EQ(std::get<std::string>(u.stop_reason), "abc");
  EXPECT_EQ(h.checker.text(), "x");
}

TEST(StopCheckerTest, MultiByteUtf8StopString) {
  SamplingParams p;
  p.stop = {"\xe3\x80\x82\xe3\x80\x8d"};  // "。」"
  Feed f(p);
  StopUpdate u = f.Add(1, "\xe6\x97\xa5\xe3\x80\x82");  // "日。"
  EXPECT_EQ(u.delta, "\xe6\x97\xa5");
  EXPECT_EQ(u.held_back, 3u);
  u = f.Add(1, "\xe3\x80\x8d!");
  EXPECT_EQ(u.finish_reason, FinishReason::kStop);
  EXPECT_EQ(f.checker.text(), "\xe6\x97\xa5");
}

TEST(StopCheckerTest, EosAndStopTokenIds) {
  SamplingParams p;
  p.stop_token_ids = {7};
  {
    Feed f(p);
    f.Add(1, "Hi");
    StopUpdate u = f.Add(kEos, "</s>");
    EXPECT_EQ(u.finish_reason, FinishReason::kStop);
    EXPECT_TRUE(std::holds_alternative<std::monostate>(u.stop_reason));
    EXPECT_EQ(f.checker.text(), "Hi");  // the EOS text is dropped
  }
  {
    Feed f(p);
    f.Add(1, "Hi");
    StopUpdate u = f.Add(7, "<|end|>");
    EXPECT_EQ(u.finish_reason, FinishReason::kStop);
    EXPECT_EQ(std::get<int32_t>(u.stop_reason), 7);
    EXPECT_EQ(f.checker.text(), "Hi");
  }
  {
    p.include_stop_str_in_output = true;
    Feed f(p);
    f.Add(1, "Hi");
    f.Add(7, "<|end|>");
    EXPECT_EQ(f.checker.text(), "Hi<|end|>");
    EXPECT_EQ(f.streamed, "Hi<|end|>");
    p.include_stop_str_in_output = false;
  }
  {
    p.ignore_eos = true;  // EOS is an ordinary token; stop tokens still stop
    Feed f(p);
    EXPECT_EQ(f.Add(kEos, "</s>").finish_reason, FinishReason::kNone);
    EXPECT_EQ(f.Add(7, "").finish_reason, FinishReason::kStop);
    EXPECT_EQ(f.checker.text(), "</s>");
  }
}

TEST(StopCheckerTest, MinTokensSuppressesStops) {
  SamplingParams p;
  p.min_tokens = 3;
  p.stop = {"!"};
  p.stop_token_ids = {7};
  Feed f(p);
  EXPECT_EQ(f.Add(kEos, "").finish_reason, FinishReason::kNone);  // 1 < 3
  EXPECT_EQ(f.Add(1, "a!").finish_reason, FinishReason::kNone);   // 2 < 3: stop string ignored
  StopUpdate u = f.Add(7, "b");                                   // 3 >= 3: stop token counts
  EXPECT_EQ(u.finish_reason, FinishReason::kStop);
  EXPECT_EQ(std::get<int32_t>(u.stop_reason), 7);
  EXPECT_EQ(f.checker.text(), "a!");

  Feed g(p);
  g.Add(1, "x");
  g.Add(1, "y");
  u = g.Add(1, "z!");
  EXPECT_EQ(u.finish_reason, FinishReason::kStop);
  EXPECT_EQ(g.checker.text(), "xyz");
}

TEST(StopCheckerTest, MaxTokensAndLengthLimit) {
  SamplingParams p;
  p.max_tokens = 3;
  Feed f(p);
  EXPECT_EQ(f.Add(1, "a").finish_reason, FinishReason::kNone);
  EXPECT_EQ(f.Add(1, "b").finish_reason, FinishReason::kNone);
  StopUpdate u = f.Add(1, "c");
  EXPECT_EQ(u.finish_reason, FinishReason::kLength);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(u.stop_reason));
  EXPECT_EQ(f.streamed, "abc");

  // A stop on the last allowed token reports kStop, not kLength.
  p.stop = {"c"};
  Feed g(p);
  g.Add(1, "a");
  g.Add(1, "b");
  EXPECT_EQ(g.Add(1, "c").finish_reason, FinishReason::kStop);

  // The extra length limit (context budget) caps max_tokens; without either no kLength.
  p.stop.clear();
  Feed h(p, 2);
  h.Add(1, "a");
  EXPECT_EQ(h.Add(1, "b").finish_reason, FinishReason::kLength);
  SamplingParams unlimited;
  Feed k(unlimited);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(k.Add(1, "x").finish_reason, FinishReason::kNone);
}

}  // namespace
}  // namespace c8
