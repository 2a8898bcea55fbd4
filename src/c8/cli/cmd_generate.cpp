// `c8 generate`: run a model on one or more prompts (or an interactive chat), streaming the
// text to stdout and timing figures to stderr.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "c8/cli/commands.h"
#include "c8/cli/engine_flags.h"
#include "c8/engine/llm_engine.h"
#include "c8/engine/model_bundle.h"

namespace c8::cli {

namespace {

struct GenerateArgs {
  std::string model;
  std::vector<std::string> prompts;
  std::string system;
  bool chat = false, interactive = false, quiet = false;
  EngineFlags engine;
  SamplingParams sp;
  int32_t max_tokens = 256;
  uint64_t seed = 0;
  CLI::App* sub = nullptr;
};

std::vector<std::string> ExplicitSamplingFields(CLI::App* sub) {
  std::vector<std::string> out;
  const std::pair<const char*, const char*> map[] = {
      {"--temperature", "temperature"},
      {"--top-p", "top_p"},
      {"--top-k", "top_k"},
      {"--min-p", "min_p"},
      {"--repetition-penalty", "repetition_penalty"}};
  for (auto& [flag, field] : map) {
    if (sub->count(flag) > 0) out.push_back(field);
  }
  return out;
}

int Run(GenerateArgs& a) {
  auto bundle = ModelBundle::Load(a.engine.ToEngineOptions(a.model, !a.quiet));
  if (!bundle.ok()) {
    std::fprintf(stderr, "c8 generate: error: %s\n", bundle.message().c_str());
    return 1;
  }
  ModelBundle& m = **bundle;
  SamplingParams sp = a.sp;
  sp.max_tokens = a.max_tokens;
  if (a.sub->count("--seed") > 0) sp.seed = a.seed;
  m.defaults.ApplyTo(sp, ExplicitSamplingFields(a.sub));
  if (Status st = sp.Validate(); !st.ok()) {
    std::fprintf(stderr, "c8 generate: error: %s\n", st.message().c_str());
    return 2;
  }
  if (!a.quiet) {
    std::fprintf(
        stderr, "c8: %s on %s, %lld layers, KV %s; %s\n", a.model.c_str(),
        m.executor->device_name().c_str(), static_cast<long long>(m.executor->config().num_layers),
        std::string(KvDTypeName(m.executor->layer_dtype(0))).c_str(), m.kv_summary.c_str());
  }
  LlmEngine engine(m, a.engine.ToEngineConfig(m.executor->max_model_len()));
  auto new_history = [&] {
    nlohmann::json h = nlohmann::json::array();
    if (!a.system.empty()) h.push_back({{"role", "system"}, {"content", a.system}});
    return h;
  };
  nlohmann::json history = new_history();

  // Runs a batch of prompts through the engine (continuous batching). With one prompt the
  // text streams as it is generated; with several each answer is printed when it ends.
  auto run_batch = [&](const std::vector<std::string>& texts, bool chat) -> bool {
    struct Item {
      std::string text, output;
      int64_t prompt_tokens = 0, cached = 0, generated = 0;
      FinishReason finish = FinishReason::kNone;
      bool done = false;
    };
    std::vector<Item> items(texts.size());
    const bool stream = texts.size() == 1;
    for (size_t i = 0; i < texts.size(); ++i) {
      std::vector<int32_t> ids;
      if (chat) {
        nlohmann::json msgs = a.interactive ? history : new_history();
        msgs.push_back({{"role", "user"}, {"content", texts[i]}});
        auto r = m.EncodeChat(msgs);
        if (!r.ok()) {
          std::fprintf(stderr, "c8 generate: error: %s\n", r.message().c_str());
          return false;
        }
        ids = std::move(r).value();
      } else {
        ids = m.EncodePrompt(texts[i]);
      }
      EngineRequest er;
      er.id = std::to_string(i);
      er.prompt = std::move(ids);
      er.params = sp;
      items[i].text = texts[i];
      items[i].prompt_tokens = static_cast<int64_t>(er.prompt.size());
      if (Status st = engine.AddRequest(std::move(er)); !st.ok()) {
        std::fprintf(stderr, "c8 generate: error: prompt %zu: %s\n", i + 1, st.message().c_str());
        return false;
      }
    }
    if (stream && !chat) std::fwrite(texts[0].data(), 1, texts[0].size(), stdout);
    const auto t0 = std::chrono::steady_clock::now();
    std::optional<std::chrono::steady_clock::time_point> t_first;
    size_t printed = 0;
    bool ok = true;
    while (engine.HasWork()) {
      for (RequestOutput& o : engine.Step()) {
        Item& it = items[std::stoul(o.id)];
        if (!t_first && !o.new_tokens.empty()) t_first = std::chrono::steady_clock::now();
        it.output += o.delta;
        it.generated = o.num_output_tokens;
        it.cached = o.num_cached_tokens;
        if (stream && !o.delta.empty()) {
          std::fwrite(o.delta.data(), 1, o.delta.size(), stdout);
          std::fflush(stdout);
        }
        if (o.finished) {
          it.done = true;
          it.finish = o.finish_reason;
          if (!o.error.empty()) {
            std::fprintf(stderr, "c8 generate: error: prompt %s: %s\n", o.id.c_str(),
                         o.error.c_str());
            ok = false;
          }
        }
      }
      // Print finished answers in prompt order.
      while (!stream && printed < items.size() && items[printed].done) {
        const Item& it = items[printed];
        std::printf("=== [%zu] %s\n%s%s\n", printed + 1, it.text.c_str(),
                    chat ? "" : it.text.c_str(), it.output.c_str());
        std::fflush(stdout);
        ++printed;
      }
    }
    if (stream) std::fputc('\n', stdout);
    const double total =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double ttft = t_first ? std::chrono::duration<double>(*t_first - t0).count() : total;
    int64_t in = 0, cached = 0, out = 0;
    for (const Item& it : items) {
      in += it.prompt_tokens;
      cached += it.cached;
      out += it.generated;
    }
    if (chat && a.interactive && !items.empty()) {
      history.push_back({{"role", "user"}, {"content", items[0].text}});
      history.push_back({{"role", "assistant"}, {"content", items[0].output}});
    }
    if (!a.quiet) {
      std::fprintf(stderr,
                   "[%zu prompt(s): %lld prompt tokens (%lld from prefix cache), %lld generated, "
                   "finish=%s | first token %.3f s, %.1f output tok/s after it]\n",
                   items.size(), static_cast<long long>(in), static_cast<long long>(cached),
                   static_cast<long long>(out),
                   items.size() == 1 ? FinishReasonName(items[0].finish) : "-", ttft,
                   total > ttft ? (out - static_cast<double>(items.size())) / (total - ttft) : 0.0);
    }
    return ok;
  };

  bool ok = true;
  if (!a.prompts.empty()) ok = run_batch(a.prompts, a.chat);
  if (a.interactive) {
    std::string line;
    for (;;) {
      std::fprintf(stderr, "> ");
      if (!std::getline(std::cin, line)) break;
      if (line == "/exit" || line == "/quit") break;
      if (line == "/reset") {
        history = new_history();
        continue;
      }
      if (line.empty()) continue;
      run_batch({line}, true);
    }
  }
  return ok ? 0 : 1;
}

}  // namespace

Runner RegisterGenerate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* sub = app.add_subcommand(
      "generate", "Generate text from a model directory, streaming tokens to the terminal");
  a->sub = sub;
  sub->add_option("--model,-m", a->model, "Model directory (Hugging Face layout)")->required();
  sub->add_option("--prompt,-p", a->prompts,
                  "Prompt text (repeat for several prompts: they run batched)");
  sub->add_flag("--chat", a->chat, "Apply the model's chat template (prompt = user message)");
  sub->add_option("--system", a->system, "System message for --chat / --interactive");
  sub->add_flag("--interactive,-i", a->interactive,
                "Chat on stdin line by line (/reset clears the history, /exit quits)");
  sub->add_option("--max-tokens", a->max_tokens, "Maximum generated tokens per prompt")
      ->capture_default_str();
  sub->add_option("--temperature", a->sp.temperature,
                  "Sampling temperature (0 = greedy; default from generation_config.json, else 1)");
  sub->add_option("--top-p", a->sp.top_p, "Nucleus sampling probability mass (1 = off)");
  sub->add_option("--top-k", a->sp.top_k, "Keep only the k most likely tokens (-1 = off)");
  sub->add_option("--min-p", a->sp.min_p, "Drop tokens below min_p * max probability (0 = off)");
  sub->add_option("--repetition-penalty", a->sp.repetition_penalty, "Repetition penalty (1 = off)");
  sub->add_option("--frequency-penalty", a->sp.frequency_penalty, "Frequency penalty (0 = off)");
  sub->add_option("--presence-penalty", a->sp.presence_penalty, "Presence penalty (0 = off)");
  sub->add_option("--seed", a->seed, "Random seed (same seed, same text; also dummy weights)");
  sub->add_option("--stop", a->sp.stop, "Stop string (repeatable)");
  sub->add_flag("--ignore-eos", a->sp.ignore_eos, "Keep generating after end-of-sequence");
  a->engine.Add(sub);
  sub->add_flag("--quiet,-q", a->quiet, "No progress or statistics on stderr");
  return [a, sub]() {
    if (!sub->parsed()) return kNotParsed;
    if (a->prompts.empty() && !a->interactive) {
      std::fprintf(stderr, "c8 generate: error: give --prompt TEXT or --interactive\n");
      return 2;
    }
    return Run(*a);
  };
}

}  // namespace c8::cli
