// `c8 bench serve`: vLLM's online serving benchmark against any OpenAI-compatible server.
//
// Flow (vLLM's benchmark()): resolve the model (GET /v1/models when not given), sample the
// random dataset, send the first prompt once as a test run (abort when it fails), optional
// warm-up requests, then send every prompt at its arrival time (ArrivalTimes) with at most
// --max-concurrency in flight (FIFO), collect the outputs, compute the metrics, print vLLM's
// table and optionally save its result JSON.
#pragma once

#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "c8/bench/metrics.h"
#include "c8/bench/random_dataset.h"
#include "c8/bench/request.h"
#include "c8/bench/request_sender.h"
#include "c8/util/progress.h"
#include "c8/util/status.h"

namespace c8::bench {

struct BenchServeOptions {
  // base_url, endpoint, backend, api_key, timeout_s, extra_body (sampling parameters,
  // ignore_eos). endpoint.model is filled in from `model` / `served_model_name`.
  EndpointConfig endpoint;
  std::string model;              // empty: the first model of GET /v1/models
  std::string served_model_name;  // sent as "model" when not empty
  std::string tokenizer_path;     // tokenizer.json (or a directory holding one); optional
  std::optional<std::string> label;
  RandomDatasetOptions dataset;
  double request_rate = INFINITY;
  double burstiness = 1.0;
  std::optional<int64_t> max_concurrency;
  int64_t num_warmups = 0;
  bool initial_test = true;  // send the first prompt once before the run
  std::vector<std::string> percentile_metrics = {"ttft", "tpot", "itl"};
  std::vector<double> metric_percentiles = {99};
  bool save_result = false;
  bool save_detailed = false;
  std::string result_dir;
  std::string result_filename;
  ProgressFn progress;  // per finished request; null = none
};

struct BenchServeResult {
  std::vector<RequestOutput> outputs;
  BenchmarkMetrics metrics;
  double duration_s = 0;
  std::string table;              // as printed
  nlohmann::ordered_json result;  // as saved
  std::string result_path;        // empty unless saved
};

// Runs the benchmark, printing vLLM's status lines and table to `log` (may be null). Errors
// (bad flags, server unreachable for /v1/models, failed test run, unwritable result file) come
// back as a Status; failed benchmark requests are counted in the result instead.
Result<BenchServeResult> RunBenchServe(const BenchServeOptions& opt, std::ostream* log);

}  // namespace c8::bench
