// `c8 bench serve`: load generator for any OpenAI-compatible server (c8's own, vLLM...) that
// prints the same result table as `vllm bench serve` (flags keep vLLM's names).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "c8/bench/bench_serve.h"
#include "c8/cli/commands.h"

namespace c8::cli {

namespace {

struct BenchServeArgs {
  bench::BenchServeOptions o;
  std::string base_url, host = "127.0.0.1", endpoint;
  int port = 8000;
  std::string dataset_name = "random", request_rate = "inf", burstiness = "1.0";
  std::string percentile_metrics = "ttft,tpot,itl", metric_percentiles = "99";
  int64_t max_concurrency = 0, input_len = -1, output_len = -1;
  int64_t vocab_size = 0;
  bool ignore_eos = false, disable_tqdm = false, skip_test = false;
  double temperature = 0, top_p = 1, min_p = 0;
  int64_t top_k = -1;
  std::string label;
  CLI::App* sub = nullptr;
};

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Parses a float as Python's float() would for these flags ("inf" included).
bool ParseFloat(const std::string& s, double* v) {
  if (s == "inf" || s == "Inf" || s == "INF" || s == "infinity") {
    *v = INFINITY;
    return true;
  }
  char* end = nullptr;
  *v = std::strtod(s.c_str(), &end);
  return end && *end == '\0' && !s.empty();
}

int Fail(const std::string& msg, int code = 2) {
  std::fprintf(stderr, "c8 bench serve: error: %s\n", msg.c_str());
  return code;
}

int Run(BenchServeArgs& a) {
  bench::BenchServeOptions& o = a.o;
  if (a.dataset_name != "random") {
    return Fail("--dataset-name '" + a.dataset_name + "': only 'random' is supported");
  }
  if (o.endpoint.backend != "openai" && o.endpoint.backend != "openai-chat") {
    return Fail("--backend '" + o.endpoint.backend + "': expected openai or openai-chat");
  }
  if (a.base_url.empty()) {
    o.endpoint.base_url = "http://" + a.host + ":" + std::to_string(a.port);
  } else {
    o.endpoint.base_url = a.base_url;
  }
  if (a.sub->count("--endpoint") > 0) {
    o.endpoint.endpoint = a.endpoint;
  } else {
    o.endpoint.endpoint =
        o.endpoint.backend == "openai-chat" ? "/v1/chat/completions" : "/v1/completions";
  }
  if (a.sub->count("--api-key") == 0) {
    if (const char* k = std::getenv("OPENAI_API_KEY")) o.endpoint.api_key = k;
  }
  if (!ParseFloat(a.request_rate, &o.request_rate) || !(o.request_rate > 0)) {
    return Fail("--request-rate '" + a.request_rate + "': expected a positive number or inf");
  }
  if (!ParseFloat(a.burstiness, &o.burstiness) || !(o.burstiness > 0)) {
    return Fail("--burstiness '" + a.burstiness + "': expected a positive number");
  }
  if (a.sub->count("--max-concurrency") > 0) {
    if (a.max_concurrency <= 0) return Fail("--max-concurrency: must be greater than 0");
    o.max_concurrency = a.max_concurrency;
  }
  if (a.input_len >= 0) o.dataset.input_len = a.input_len;
  if (a.output_len >= 0) o.dataset.output_len = a.output_len;
  if (a.sub->count("--random-vocab-size") > 0) {
    o.dataset.vocab_size = a.vocab_size;
  }
  o.percentile_metrics = SplitCommas(a.percentile_metrics);
  o.metric_percentiles.clear();
  for (const std::string& p : SplitCommas(a.metric_percentiles)) {
    double v = 0;
    if (!ParseFloat(p, &v) || !(v >= 0 && v <= 100)) {
      return Fail("--metric-percentiles: '" + p + "' is not a percentile in [0, 100]");
    }
    o.metric_percentiles.push_back(v);
  }
  if (!a.label.empty()) o.label = a.label;
  o.initial_test = !a.skip_test;

  nlohmann::json extra = nlohmann::json::object();
  extra["temperature"] = a.temperature;
  if (a.sub->count("--top-p") > 0) extra["top_p"] = a.top_p;
  if (a.sub->count("--top-k") > 0) extra["top_k"] = a.top_k;
  if (a.sub->count("--min-p") > 0) extra["min_p"] = a.min_p;
  if (a.ignore_eos) extra["ignore_eos"] = true;
  o.endpoint.extra_body = extra;
  if (!a.disable_tqdm) o.progress = StderrProgress();

  auto r = bench::RunBenchServe(o, &std::cout);
  if (!r.ok()) return Fail(r.message(), 1);
  if (!r->result_path.empty())
    std::fprintf(stderr, "Saved results to %s\n", r->result_path.c_str());
  return 0;
}

}  // namespace

Runner RegisterBenchServe(CLI::App& app) {
  auto a = std::make_shared<BenchServeArgs>();
  CLI::App* bench = nullptr;
  for (CLI::App* s : app.get_subcommands([](CLI::App* s) { return s->get_name() == "bench"; })) {
    bench = s;
  }
  if (!bench) {
    bench = app.add_subcommand("bench", "Benchmarks (serve: vLLM's online serving benchmark)");
    bench->require_subcommand(1);
  }
  CLI::App* sub = bench->add_subcommand(
      "serve",
      "Load-test an OpenAI-compatible server (c8 serve, vLLM...) and print vLLM's "
      "'vllm bench serve' result table");
  a->sub = sub;
  bench::BenchServeOptions& o = a->o;
  sub->add_option("--backend", o.endpoint.backend,
                  "openai (/v1/completions) | openai-chat (/v1/chat/completions)")
      ->capture_default_str();
  sub->add_option("--base-url", a->base_url,
                  "Server base URL, e.g. http://127.0.0.1:8000 (instead of --host/--port)");
  sub->add_option("--host", a->host, "Server host")->capture_default_str();
  sub->add_option("--port", a->port, "Server port")->capture_default_str();
  sub->add_option("--endpoint", a->endpoint,
                  "API path (default /v1/completions; /v1/chat/completions with openai-chat)");
  sub->add_option("--model", o.model,
                  "Model name sent in requests (default: the first model of GET /v1/models)");
  sub->add_option("--served-model-name", o.served_model_name,
                  "Name sent as \"model\" when it differs from --model");
  sub->add_option("--tokenizer", o.tokenizer_path,
                  "tokenizer.json (or its directory): prompts are sent as text; without it, "
                  "as token-id lists (completions only)");
  sub->add_option("--label", a->label, "Result label (file name prefix; default: --backend)");
  sub->add_option("--dataset-name", a->dataset_name, "Dataset (only 'random')")
      ->capture_default_str();
  sub->add_option("--random-input-len", o.dataset.input_len, "Mean input length (tokens)")
      ->capture_default_str();
  sub->add_option("--random-output-len", o.dataset.output_len, "Mean output length (tokens)")
      ->capture_default_str();
  sub->add_option("--input-len", a->input_len, "Alias of --random-input-len");
  sub->add_option("--output-len", a->output_len, "Alias of --random-output-len");
  sub->add_option("--random-range-ratio", o.dataset.range_ratio,
                  "Lengths uniform in [L*(1-r), L*(1+r)], r in [0, 1)")
      ->capture_default_str();
  sub->add_option("--random-prefix-len", o.dataset.prefix_len,
                  "Random tokens shared by every prompt, before it")
      ->capture_default_str();
  sub->add_option("--random-vocab-size", a->vocab_size,
                  "Token ids drawn from [0, N) (default: the tokenizer's vocabulary, else 49152)");
  sub->add_option("--num-prompts", o.dataset.num_prompts, "Number of requests")
      ->capture_default_str();
  sub->add_option("--max-concurrency", a->max_concurrency,
                  "Most requests in flight at once (default: unlimited)");
  sub->add_option("--request-rate", a->request_rate,
                  "Requests per second (inf: all at time 0; else Poisson/gamma arrivals)")
      ->capture_default_str();
  sub->add_option("--burstiness", a->burstiness,
                  "Gamma shape of the arrival gaps (1 = Poisson; <1 burstier, >1 more uniform)")
      ->capture_default_str();
  sub->add_option("--num-warmups", o.num_warmups, "Warm-up requests before the run")
      ->capture_default_str();
  sub->add_flag("--skip-test-run", a->skip_test, "Do not send the initial single test request");
  sub->add_flag("--ignore-eos", a->ignore_eos,
                "Send \"ignore_eos\": true (every request generates its full output length)");
  sub->add_option("--seed", o.dataset.seed, "Random seed (prompts, arrival times)")
      ->capture_default_str();
  sub->add_option("--temperature", a->temperature, "Sampling temperature sent (0 = greedy)")
      ->capture_default_str();
  sub->add_option("--top-p", a->top_p, "top_p sent (omitted unless given)");
  sub->add_option("--top-k", a->top_k, "top_k sent (omitted unless given)");
  sub->add_option("--min-p", a->min_p, "min_p sent (omitted unless given)");
  sub->add_option("--api-key", o.endpoint.api_key,
                  "Bearer token (default: environment variable OPENAI_API_KEY)");
  sub->add_option("--timeout", o.endpoint.timeout_s, "Per-request timeout in seconds")
      ->capture_default_str();
  sub->add_option("--percentile-metrics", a->percentile_metrics,
                  "Metrics with percentiles: ttft,tpot,itl,e2el,client_queue_time,"
                  "e2el_including_client_queue")
      ->capture_default_str();
  sub->add_option("--metric-percentiles", a->metric_percentiles,
                  "Percentiles to print, e.g. 50,90,99")
      ->capture_default_str();
  sub->add_flag("--save-result", o.save_result, "Save the result JSON");
  sub->add_flag("--save-detailed", o.save_detailed,
                "Include per-request lists (input_lens, ttfts, itls, generated_texts, errors...)");
  sub->add_option("--result-dir", o.result_dir, "Directory of the result JSON");
  sub->add_option(
      "--result-filename", o.result_filename,
      "Result file name (default: {label}-{rate}qps[-concurrencyN]-{model}-{date}.json)");
  sub->add_flag("--disable-tqdm", a->disable_tqdm, "No progress bar on stderr");
  return [a]() { return a->sub->parsed() ? Run(*a) : kNotParsed; };
}

}  // namespace c8::cli
