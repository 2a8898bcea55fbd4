// Offline benchmarks through the engine (no HTTP), with vLLM's semantics:
//   c8 bench throughput  N random-token prompts of given input/output lengths, all at once
//   c8 bench latency     one batch: time to first token (prefill) and decode speed
//   c8 bench kv          KV bytes per token for each dtype and how many tokens fit
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "c8/cli/commands.h"
#include "c8/cli/engine_flags.h"
#include "c8/engine/llm_engine.h"

namespace c8::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct CommonArgs {
  std::string model;
  EngineFlags engine;
  std::string output_json;
};

void AddCommon(CLI::App* sub, CommonArgs& a) {
  sub->add_option("--model,-m", a.model, "Model directory")->required();
  a.engine.Add(sub);
  sub->add_option("--seed", a.engine.seed, "Seed of the random prompts (and dummy weights)")
      ->capture_default_str();
  sub->add_option("--output-json", a.output_json, "Also write the results as JSON");
}

Result<std::unique_ptr<ModelBundle>> Load(const CommonArgs& a, int64_t need_len) {
  EngineOptions eo = a.engine.ToEngineOptions(a.model, /*progress=*/true);
  if (a.engine.max_model_len <= 0) eo.max_model_len = std::max<int64_t>(need_len, 256);
  return ModelBundle::Load(eo);
}

// Random prompts of non-special token ids.
std::vector<std::vector<int32_t>> RandomPrompts(const ModelBundle& m, int64_t n, int64_t len,
                                                uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int32_t vocab = static_cast<int32_t>(m.executor->config().vocab_size);
  std::uniform_int_distribution<int32_t> d(0, vocab - 1);
  std::vector<std::vector<int32_t>> out(n);
  for (auto& p : out) {
    while (static_cast<int64_t>(p.size()) < len) {
      int32_t id = d(rng);
      if (!m.tokenizer || !m.tokenizer->IsSpecial(id)) p.push_back(id);
    }
  }
  return out;
}

std::string KvSummary(const ModelBundle& m) {
  const Executor& ex = *m.executor;
  const int64_t layers = ex.config().num_layers;
  int64_t int8 = 0;
  for (int64_t l = 0; l < layers; ++l) int8 += ex.layer_dtype(l) == KvDType::kInt8;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s, KV %s (%lld/%lld layers int8), %lld B/token, %lld tokens",
                ex.device_name().c_str(),
                int8 ? "c8" : std::string(KvDTypeName(ex.layer_dtype(0))).c_str(),
                static_cast<long long>(int8), static_cast<long long>(layers),
                static_cast<long long>(ex.KvBytesPerToken()),
                static_cast<long long>(ex.kv_spec().num_blocks * ex.kv_spec().block_size));
  return buf;
}

void WriteJson(const std::string& path, const nlohmann::json& j) {
  if (path.empty()) return;
  std::ofstream(path) << j.dump(2) << "\n";
}

int Fail(const char* cmd, const std::string& m) {
  std::fprintf(stderr, "c8 bench %s: error: %s\n", cmd, m.c_str());
  return 1;
}

}  // namespace

CLI::App* BenchCommand(CLI::App& app) {
  for (CLI::App* s : app.get_subcommands([](CLI::App* s) { return s->get_name() == "bench"; })) {
    return s;
  }
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks: serve, throughput, latency, kv");
  bench->require_subcommand(1);
  return bench;
}

Runner RegisterBenchOffline(CLI::App& app) {
  CLI::App* bench = BenchCommand(app);
  bench->description("Benchmarks: serve (online, vLLM's table), throughput, latency, kv");

  // --- throughput
  struct TputArgs : CommonArgs {
    int64_t input_len = 128, output_len = 128, num_prompts = 64;
  };
  auto t = std::make_shared<TputArgs>();
  CLI::App* tput =
      bench->add_subcommand("throughput",
                            "Offline throughput: N random-token prompts through the engine at once "
                            "(vLLM's `bench throughput`)");
  AddCommon(tput, *t);
  tput->add_option("--input-len", t->input_len, "Prompt tokens")->capture_default_str();
  tput->add_option("--output-len", t->output_len, "Generated tokens (EOS ignored)")
      ->capture_default_str();
  tput->add_option("--num-prompts", t->num_prompts, "Number of prompts")->capture_default_str();

  // --- latency
  struct LatArgs : CommonArgs {
    int64_t input_len = 32, output_len = 128, batch_size = 8, num_iters = 3, num_iters_warmup = 1;
  };
  auto l = std::make_shared<LatArgs>();
  CLI::App* lat = bench->add_subcommand(
      "latency",
      "One batch end to end (vLLM's `bench latency`), with prefill and decode "
      "tokens/s");
  AddCommon(lat, *l);
  lat->add_option("--input-len", l->input_len, "Prompt tokens")->capture_default_str();
  lat->add_option("--output-len", l->output_len, "Generated tokens")->capture_default_str();
  lat->add_option("--batch-size", l->batch_size, "Sequences in the batch")->capture_default_str();
  lat->add_option("--num-iters", l->num_iters, "Timed iterations")->capture_default_str();
  lat->add_option("--num-iters-warmup", l->num_iters_warmup, "Warm-up iterations")
      ->capture_default_str();

  // --- kv
  struct KvArgs {
    std::string model;
    double gib = 1.0;
    int64_t block_size = 16;
  };
  auto k = std::make_shared<KvArgs>();
  CLI::App* kv = bench->add_subcommand(
      "kv", "KV cache bytes per token (16-bit vs C8) and how many tokens fit in a memory size");
  kv->add_option("--model,-m", k->model, "Model directory")->required();
  kv->add_option("--kv-cache-memory", k->gib, "KV memory in GiB")->capture_default_str();
  kv->add_option("--block-size", k->block_size, "KV block size")->capture_default_str();

  return [t, tput, l, lat, k, kv]() -> int {
    if (tput->parsed()) {
      auto b = Load(*t, t->input_len + t->output_len + 1);
      if (!b.ok()) return Fail("throughput", b.message());
      ModelBundle& m = **b;
      LlmEngine engine(m, t->engine.ToEngineConfig(m.executor->max_model_len()));
      SamplingParams sp;  // vLLM: temperature 1, top_p 1, ignore_eos, fixed output length
      sp.max_tokens = static_cast<int32_t>(t->output_len);
      sp.ignore_eos = true;
      auto prompts = RandomPrompts(m, t->num_prompts, t->input_len, t->engine.seed);
      const auto t0 = Clock::now();
      for (size_t i = 0; i < prompts.size(); ++i) {
        EngineRequest r;
        r.id = std::to_string(i);
        r.prompt = prompts[i];
        r.params = sp;
        r.params.seed = t->engine.seed + i;
        if (Status st = engine.AddRequest(std::move(r)); !st.ok())
          return Fail("throughput", st.message());
      }
      int64_t out_tokens = 0, done = 0;
      auto progress = StderrProgress();
      while (engine.HasWork()) {
        for (auto& o : engine.Step()) {
          out_tokens += static_cast<int64_t>(o.new_tokens.size());
          if (!o.error.empty()) return Fail("throughput", o.error);
          if (o.finished) progress(++done, t->num_prompts, "requests");
        }
      }
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      const int64_t in_tokens = t->num_prompts * t->input_len;
      EngineStats es = engine.stats();
      std::printf("c8 bench throughput: %s\n", KvSummary(m).c_str());
      std::printf("Throughput: %.2f requests/s, %.2f total tokens/s, %.2f output tokens/s\n",
                  t->num_prompts / s, (in_tokens + out_tokens) / s, out_tokens / s);
      std::printf(
          "Total num prompt tokens:  %lld\nTotal num output tokens:  %lld\n"
          "Elapsed time (s): %.3f, preemptions: %lld\n",
          static_cast<long long>(in_tokens), static_cast<long long>(out_tokens), s,
          static_cast<long long>(es.num_preemptions));
      WriteJson(t->output_json, {{"elapsed_time", s},
                                 {"num_requests", t->num_prompts},
                                 {"total_num_tokens", in_tokens + out_tokens},
                                 {"requests_per_second", t->num_prompts / s},
                                 {"tokens_per_second", (in_tokens + out_tokens) / s},
                                 {"output_tokens_per_second", out_tokens / s}});
      return 0;
    }
    if (lat->parsed()) {
      auto b = Load(*l, l->input_len + l->output_len + 1);
      if (!b.ok()) return Fail("latency", b.message());
      ModelBundle& m = **b;
      // vLLM's latency semantics: the whole batch is prefilled in one step.
      EngineConfig ec = l->engine.ToEngineConfig(m.executor->max_model_len());
      ec.scheduler.max_num_seqs =
          std::max<int32_t>(ec.scheduler.max_num_seqs, static_cast<int32_t>(l->batch_size));
      // Unless --max-num-batched-tokens is given, the batch is prefilled in one step.
      if (lat->count("--max-num-batched-tokens") == 0) {
        ec.scheduler.max_num_batched_tokens =
            std::max<int32_t>(ec.scheduler.max_num_batched_tokens,
                              static_cast<int32_t>(l->batch_size * l->input_len));
      }
      ec.enable_prefix_caching = false;  // every iteration computes its prompts
      SamplingParams sp;
      sp.temperature = 0;
      sp.max_tokens = static_cast<int32_t>(l->output_len);
      sp.ignore_eos = true;
      std::vector<double> lat_s, prefill_s, decode_s;
      for (int64_t it = 0; it < l->num_iters_warmup + l->num_iters; ++it) {
        LlmEngine engine(m, ec);
        auto prompts = RandomPrompts(m, l->batch_size, l->input_len, l->engine.seed + it);
        for (size_t i = 0; i < prompts.size(); ++i) {
          EngineRequest r;
          r.id = std::to_string(i);
          r.prompt = prompts[i];
          r.params = sp;
          if (Status st = engine.AddRequest(std::move(r)); !st.ok())
            return Fail("latency", st.message());
        }
        const auto t0 = Clock::now();
        std::optional<Clock::time_point> t_first;
        int64_t prefilled = 0;
        while (engine.HasWork()) {
          auto outs = engine.Step();
          for (const auto& o : outs) {
            if (!o.error.empty()) return Fail("latency", o.error);
          }
          // Prefill ends when every sequence of the batch has its first token; the rest of
          // the run is pure decode steps.
          for (const auto& o : outs) {
            if (!o.new_tokens.empty() && o.num_output_tokens == 1) ++prefilled;
          }
          if (!t_first && prefilled == static_cast<int64_t>(prompts.size())) t_first = Clock::now();
        }
        const auto t1 = Clock::now();
        if (it < l->num_iters_warmup) continue;
        lat_s.push_back(std::chrono::duration<double>(t1 - t0).count());
        prefill_s.push_back(std::chrono::duration<double>(*t_first - t0).count());
        decode_s.push_back(std::chrono::duration<double>(t1 - *t_first).count());
      }
      auto mean = [](const std::vector<double>& v) {
        double s = 0;
        for (double x : v) s += x;
        return v.empty() ? 0.0 : s / v.size();
      };
      std::vector<double> sorted = lat_s;
      std::sort(sorted.begin(), sorted.end());
      const double prefill_tps = l->batch_size * l->input_len / mean(prefill_s);
      const double decode_tps = l->batch_size * (l->output_len - 1) / mean(decode_s);
      std::printf("c8 bench latency: %s\n", KvSummary(m).c_str());
      std::printf("batch %lld, input %lld, output %lld\n", static_cast<long long>(l->batch_size),
                  static_cast<long long>(l->input_len), static_cast<long long>(l->output_len));
      std::printf("Avg latency: %.4f seconds\n", mean(lat_s));
      std::printf("50%% percentile latency: %.4f seconds\n", sorted[sorted.size() / 2]);
      std::printf("Prefill: %.4f s, %.1f tokens/s\nDecode: %.4f s, %.1f tokens/s (%.2f ms/step)\n",
                  mean(prefill_s), prefill_tps, mean(decode_s), decode_tps,
                  1e3 * mean(decode_s) / std::max<int64_t>(1, l->output_len - 1));
      WriteJson(l->output_json, {{"avg_latency", mean(lat_s)},
                                 {"latencies", lat_s},
                                 {"prefill_tokens_per_second", prefill_tps},
                                 {"decode_tokens_per_second", decode_tps}});
      return 0;
    }
    if (kv->parsed()) {
      auto cfg = LoadModelConfig(k->model);
      if (!cfg.ok()) return Fail("kv", cfg.message());
      const ModelConfig& c = *cfg;
      const double bytes = k->gib * (1ull << 30);
      std::printf("%s: %lld layers x %lld KV heads x head_dim %lld, %.2f GiB of KV memory\n",
                  k->model.c_str(), static_cast<long long>(c.num_layers),
                  static_cast<long long>(c.num_kv_heads), static_cast<long long>(c.head_dim),
                  k->gib);
      std::printf("%-8s %14s %14s\n", "dtype", "bytes/token", "tokens fit");
      for (KvDType d : {KvDType::kBF16, KvDType::kInt8}) {
        const int64_t per_token =
            2 * c.num_layers * c.num_kv_heads * c.head_dim * static_cast<int64_t>(KvDTypeSize(d));
        const int64_t blocks = static_cast<int64_t>(bytes / (per_token * k->block_size));
        std::printf("%-8s %14lld %14lld\n", d == KvDType::kInt8 ? "c8-int8" : "bf16",
                    static_cast<long long>(per_token),
                    static_cast<long long>(std::max<int64_t>(0, blocks - 1) * k->block_size));
      }
      return 0;
    }
    return kNotParsed;
  };
}

}  // namespace c8::cli
