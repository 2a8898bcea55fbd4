#include "c8/bench/bench_serve.h"

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include "c8/bench/arrival_schedule.h"
#include "c8/bench/report.h"
#include "c8/tokenizer/tokenizer.h"

namespace c8::bench {

namespace {

void SleepUntil(double t) {
  const double now = NowSeconds();
  if (t > now) std::this_thread::sleep_for(std::chrono::duration<double>(t - now));
}

std::string NowDateString() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", &tm);
  return buf;
}

// Counts finished requests and reports them through the ProgressFn (thread-safe).
class ProgressCounter {
 public:
  ProgressCounter(ProgressFn fn, int64_t total) : fn_(std::move(fn)), total_(total) {}
  void Tick() {
    if (!fn_) return;
    std::lock_guard<std::mutex> lock(mu_);
    fn_(++done_, total_, "bench serve");
  }

 private:
  ProgressFn fn_;
  int64_t total_;
  int64_t done_ = 0;
  std::mutex mu_;
};

// Sends every request at t0 + arrival[i]; at most `max_concurrency` in flight (FIFO queue
// served by that many workers), or one thread per request when unlimited.
std::vector<RequestOutput> SendAll(const EndpointConfig& cfg,
                                   const std::vector<RequestInput>& inputs,
                                   const std::vector<double>& arrival, double t0,
                                   std::optional<int64_t> max_concurrency,
                                   ProgressCounter* progress) {
  const size_t n = inputs.size();
  std::vector<RequestOutput> outputs(n);
  auto run_one = [&](RequestSender* sender, size_t i, double arrived) {
    outputs[i] = sender->Send(inputs[i]);
    outputs[i].client_queue_time = outputs[i].start_time - arrived;
    progress->Tick();
  };
  auto failed_sender = [&](size_t i, const std::string& msg) {
    outputs[i].error = msg;
    outputs[i].prompt_len = inputs[i].prompt_len;
    outputs[i].start_time = NowSeconds();
    progress->Tick();
  };

  if (max_concurrency) {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::pair<size_t, double>> queue;
    bool closed = false;
    std::vector<std::thread> workers;
    const int64_t nw = std::min<int64_t>(*max_concurrency, static_cast<int64_t>(n));
    for (int64_t w = 0; w < nw; ++w) {
      workers.emplace_back([&]() {
        auto sender = RequestSender::Create(cfg);
        for (;;) {
          std::pair<size_t, double> item;
          {
            std::unique_lock<std::mutex> lock(mu);
            cv.wait(lock, [&] { return closed || !queue.empty(); });
            if (queue.empty()) return;
            item = queue.front();
            queue.pop_front();
          }
          if (!sender.ok()) {
            failed_sender(item.first, sender.message());
          } else {
            run_one(sender->get(), item.first, item.second);
          }
        }
      });
    }
    for (size_t i = 0; i < n; ++i) {
      SleepUntil(t0 + arrival[i]);
      const double arrived = NowSeconds();
      {
        std::lock_guard<std::mutex> lock(mu);
        queue.emplace_back(i, arrived);
      }
      cv.notify_one();
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      closed = true;
    }
    cv.notify_all();
    for (auto& w : workers) w.join();
    return outputs;
  }

  std::vector<std::thread> threads;
  threads.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    SleepUntil(t0 + arrival[i]);
    const double arrived = NowSeconds();
    auto task = [&, i, arrived]() {
      auto sender = RequestSender::Create(cfg);
      if (!sender.ok()) {
        failed_sender(i, sender.message());
      } else {
        run_one(sender->get(), i, arrived);
      }
    };
    try {
      threads.emplace_back(task);
    } catch (const std::system_error& e) {  // out of threads: send it from here
      task();
    }
  }
  for (auto& t : threads) t.join();
  return outputs;
}

}  // namespace

Result<BenchServeResult> RunBenchServe(const BenchServeOptions& opt, std::ostream* log) {
  auto say = [log](const std::string& s) {
    if (log) *log << s << "\n" << std::flush;
  };
  for (const std::string& m : opt.percentile_metrics) {
    if (!IsKnownPercentileMetric(m)) {
      return Error("--percentile-metrics: unknown metric '" + m +
                   "' (expected ttft, tpot, itl, e2el, client_queue_time, "
                   "e2el_including_client_queue)");
    }
  }
  for (double p : opt.metric_percentiles) {
    if (!(p >= 0 && p <= 100)) return Error("--metric-percentiles: each must be in [0, 100]");
  }
  if (opt.max_concurrency && *opt.max_concurrency <= 0) {
    return Error("--max-concurrency: must be greater than 0");
  }
  if (!(opt.request_rate > 0)) return Error("--request-rate: must be positive (or inf)");
  if (!(opt.burstiness > 0)) return Error("--burstiness: must be positive");

  // Model.
  EndpointConfig cfg = opt.endpoint;
  std::string model_id = opt.model;
  std::string model_name = opt.served_model_name;
  if (model_id.empty()) {
    say("Model not specified, fetching first model from server...");
    C8_ASSIGN_OR_RETURN(auto first, FetchFirstModel(cfg.base_url, cfg.api_key, cfg.timeout_s));
    model_name = first.first;
    model_id = first.second;
    say("First model name: " + model_name + ", first model id: " + model_id);
  }
  cfg.model = model_name.empty() ? model_id : model_name;

  // Tokenizer (optional).
  std::optional<Tokenizer> tokenizer;
  if (!opt.tokenizer_path.empty()) {
    std::string path = opt.tokenizer_path;
    if (std::filesystem::is_directory(path)) path += "/tokenizer.json";
    auto tok = Tokenizer::FromFile(path);
    if (!tok.ok()) return tok.status().WithContext("--tokenizer");
    tokenizer = std::move(tok).value();
  }
  if (cfg.backend == "openai-chat" && !tokenizer) {
    return Error("--backend openai-chat: needs --tokenizer (chat prompts must be text)");
  }

  // Dataset.
  C8_ASSIGN_OR_RETURN(std::vector<RequestInput> inputs,
                      SampleRandomDataset(opt.dataset, tokenizer ? &*tokenizer : nullptr));

  C8_RETURN_IF_ERROR(RequestSender::Create(cfg).status());
  C8_RETURN_IF_ERROR(BuildPayload(cfg, inputs[0]).status());
  if (opt.initial_test) {
    say("Starting initial single prompt test run...");
    C8_ASSIGN_OR_RETURN(auto probe_sender, RequestSender::Create(cfg));
    RequestOutput test = probe_sender->Send(inputs[0]);
    if (!test.success) {
      return Error(
          "Initial test run failed - Please make sure benchmark arguments are correctly "
          "specified. Error: " +
          test.error);
    }
    say("Initial test run completed.");
  } else {
    say("Skipping endpoint ready check.");
  }
  if (opt.num_warmups > 0) {
    say("Warming up with " + std::to_string(opt.num_warmups) + " requests...");
    std::vector<RequestInput> warm(opt.num_warmups, inputs[0]);
    std::vector<double> zeros(warm.size(), 0.0);
    ProgressCounter pc(opt.progress, static_cast<int64_t>(warm.size()));
    SendAll(cfg, warm, zeros, NowSeconds(), opt.max_concurrency, &pc);
    say("Warmup run completed.");
  }
  say("Starting main benchmark run...");
  say("Traffic request rate: " + PyFloatRepr(opt.request_rate));
  say("Burstiness factor: " + PyFloatRepr(opt.burstiness) + " (" +
      (opt.burstiness == 1.0 ? "Poisson process" : "Gamma distribution") + ")");
  say("Maximum request concurrency: " +
      (opt.max_concurrency ? std::to_string(*opt.max_concurrency) : std::string("None")));

  const std::vector<double> arrival = ArrivalTimes(
      static_cast<int64_t>(inputs.size()), opt.request_rate, opt.burstiness, opt.dataset.seed);
  ProgressCounter progress(opt.progress, static_cast<int64_t>(inputs.size()));
  BenchServeResult r;
  const double t0 = NowSeconds();
  r.outputs = SendAll(cfg, inputs, arrival, t0, opt.max_concurrency, &progress);
  r.duration_s = NowSeconds() - t0;

  std::function<int64_t(const std::string&)> count_tokens;
  if (tokenizer) {
    count_tokens = [&tokenizer](const std::string& text) {
      return static_cast<int64_t>(tokenizer->Encode(text, false).size());
    };
  }
  r.metrics = ComputeMetrics(r.outputs, r.duration_s, opt.metric_percentiles, count_tokens);

  int shown = 0;
  for (const RequestOutput& o : r.outputs) {
    if (o.success) continue;
    if (shown == 0) say("Failed requests during benchmark run detected (capping to 10):");
    if (shown == 10) break;
    say("Error " + std::to_string(shown) + ": " + o.error);
    ++shown;
  }

  ReportConfig rc;
  rc.max_concurrency = opt.max_concurrency;
  rc.request_rate = opt.request_rate;
  rc.duration_s = r.duration_s;
  rc.percentile_metrics = opt.percentile_metrics;
  r.table = FormatResultTable(r.metrics, rc);
  if (log) *log << r.table << std::flush;

  RunInfo info;
  info.date = NowDateString();
  info.backend = cfg.backend;
  info.label = opt.label;
  info.model_id = model_id;
  if (!opt.tokenizer_path.empty()) info.tokenizer_id = opt.tokenizer_path;
  info.num_prompts = opt.dataset.num_prompts;
  info.burstiness = opt.burstiness;
  r.result = BuildResultJson(info, rc, r.metrics, r.outputs, opt.save_detailed);

  if (opt.save_result) {
    std::string name =
        opt.result_filename.empty() ? DefaultResultFileName(info, rc) : opt.result_filename;
    if (!opt.result_dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(opt.result_dir, ec);
      if (ec) return Error("--result-dir '" + opt.result_dir + "': " + ec.message());
      name = (std::filesystem::path(opt.result_dir) / name).string();
    }
    std::ofstream f(name);
    f << r.result.dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
    f.close();
    if (!f) return Error("--save-result: cannot write '" + name + "'");
    r.result_path = name;
  }
  return r;
}

}  // namespace c8::bench
