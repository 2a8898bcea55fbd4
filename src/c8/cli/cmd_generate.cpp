// `c8 generate`: run a model on one or more prompts (or an interactive chat), streaming the
// text to stdout and timing figures to stderr.
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "c8/cli/commands.h"
#include "c8/engine/model_bundle.h"
#include "c8/engine/sequence_generator.h"

namespace c8::cli {

namespace {

struct GenerateArgs {
  std::string model;
  std::vector<std::string> prompts;
  std::string system;
  bool chat = false, interactive = false, quiet = false;
  std::string device = "auto", kv_cache_dtype = "auto";
  int threads = 0;
  int64_t max_model_len = 0, block_size = 16;
  double kv_cache_gib = 0;
  SamplingParams sp;
  int32_t max_tokens = 256;
  uint64_t seed = 0;
  CLI::App* sub = nullptr;
};

std::vector<std::string> ExplicitSamplingFields(CLI::App* sub) {
  std::vector<std::string> out;
  const std::pair<const char*, const char*> map[] = {{"--temperature", "temperature"},
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
  EngineOptions eo;
  eo.model_dir = a.model;
  eo.backend.device = a.device;
  eo.backend.num_threads = a.threads;
  eo.kv_cache_dtype = a.kv_cache_dtype;
  eo.max_model_len = a.max_model_len;
  eo.block_size = a.block_size;
  eo.kv_cache_gib = a.kv_cache_gib;
  if (!a.quiet) eo.progress = StderrProgress();
  auto bundle = ModelBundle::Load(eo);
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
    std::fprintf(stderr, "c8: %s on %s, %lld layers, KV cache %s (%lld tokens)\n", a.model.c_str(),
                 m.backend->Name().c_str(), static_cast<long long>(m.model->config().num_layers),
                 std::string(KvDTypeName(m.kv_cache->layer_dtype(0))).c_str(),
                 static_cast<long long>(m.kv_cache->spec().num_blocks *
                                        m.kv_cache->spec().block_size));
  }
  SequenceGenerator gen(m);
  nlohmann::json history = nlohmann::json::array();
  if (!a.system.empty()) history.push_back({{"role", "system"}, {"content", a.system}});

  auto run_one = [&](const std::string& prompt_text) -> bool {
    std::vector<int32_t> ids;
    if (a.chat || a.interactive) {
      history.push_back({{"role", "user"}, {"content", prompt_text}});
      auto r = m.EncodeChat(history);
      if (!r.ok()) {
        std::fprintf(stderr, "c8 generate: error: %s\n", r.message().c_str());
        return false;
      }
      ids = std::move(r).value();
    } else {
      ids = m.EncodePrompt(prompt_text);
    }
    if (!a.chat && !a.interactive) {
      std::fwrite(prompt_text.data(), 1, prompt_text.size(), stdout);
    }
    auto res = gen.Generate(ids, sp, [](std::string_view d) {
      std::fwrite(d.data(), 1, d.size(), stdout);
      std::fflush(stdout);
    });
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (!res.ok()) {
      std::fprintf(stderr, "c8 generate: error: %s\n", res.message().c_str());
      return false;
    }
    if (a.chat || a.interactive) {
      history.push_back({{"role", "assistant"}, {"content", res->text}});
    }
    if (!a.quiet) {
      const double n_out = static_cast<double>(res->output_ids.size());
      const int64_t computed = res->prompt_tokens - res->reused_prompt_tokens;
      std::fprintf(stderr,
                   "[%lld prompt tokens (%lld cached), %.0f generated, finish=%s | prefill "
                   "%.1f tok/s, decode %.1f tok/s]\n",
                   static_cast<long long>(res->prompt_tokens),
                   static_cast<long long>(res->reused_prompt_tokens), n_out,
                   FinishReasonName(res->finish_reason),
                   res->prefill_seconds > 0 ? computed / res->prefill_seconds : 0.0,
                   res->decode_seconds > 0 && n_out > 1 ? (n_out - 1) / res->decode_seconds : 0.0);
    }
    return true;
  };

  bool ok = true;
  for (const std::string& p : a.prompts) {
    if (a.chat && !a.interactive) {  // each --prompt is its own conversation
      history = nlohmann::json::array();
      if (!a.system.empty()) history.push_back({{"role", "system"}, {"content", a.system}});
    }
    ok = run_one(p) && ok;
  }
  if (a.interactive) {
    std::string line;
    for (;;) {
      std::fprintf(stderr, "> ");
      if (!std::getline(std::cin, line)) break;
      if (line == "/exit" || line == "/quit") break;
      if (line == "/reset") {
        history = nlohmann::json::array();
        if (!a.system.empty()) history.push_back({{"role", "system"}, {"content", a.system}});
        continue;
      }
      if (line.empty()) continue;
      run_one(line);
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
  sub->add_option("--prompt,-p", a->prompts, "Prompt text (repeat for several prompts)");
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
  sub->add_option("--seed", a->seed, "Random seed (same seed, same text)");
  sub->add_option("--stop", a->sp.stop, "Stop string (repeatable)");
  sub->add_flag("--ignore-eos", a->sp.ignore_eos, "Keep generating after end-of-sequence");
  sub->add_option("--device", a->device, "auto | cpu | cuda")->capture_default_str();
  sub->add_option("--threads", a->threads, "CPU threads (0 = all cores)")->capture_default_str();
  sub->add_option("--kv-cache-dtype", a->kv_cache_dtype,
                  "KV cache dtype: auto (what the checkpoint says) | bf16 | fp32 | int8")
      ->capture_default_str();
  sub->add_option("--max-model-len", a->max_model_len,
                  "Context length (0 = the model's, capped at 32768)");
  sub->add_option("--block-size", a->block_size, "KV cache block size (multiple of 16)")
      ->capture_default_str();
  sub->add_option("--kv-cache-memory", a->kv_cache_gib,
                  "KV cache size in GiB (0 = enough for one full context)");
  sub->add_flag("--quiet,-q", a->quiet, "No progress or statistics on stderr");
  return [a]() {
    if (a->prompts.empty() && !a->interactive) {
      std::fprintf(stderr, "c8 generate: error: give --prompt TEXT or --interactive\n");
      return 2;
    }
    return Run(*a);
  };
}

}  // namespace c8::cli
