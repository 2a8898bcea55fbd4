// `c8 calibrate`: make C8 KV scales for a model from calibration text and write a new model
// directory (weights linked) with them in the ModelSlim layout.
#include <cmath>
#include <cstdio>
#include <memory>

#include "c8/cli/commands.h"
#include "c8/cli/text_job.h"
#include "c8/engine/kv_calibration.h"
#include "c8/formats/c8_writer.h"

namespace c8::cli {

Runner RegisterCalibrate(CLI::App& app) {
  struct Args {
    TextJobArgs job;
    std::string out;
    int64_t seq_len = 512;
    bool symmetric = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "calibrate",
      "Compute C8 (int8, static per-channel) KV-cache scales from calibration text and write a "
      "new model directory that serves with an int8 KV cache");
  a->job.Add(sub, "Source model directory", "Calibration text file (UTF-8)");
  sub->add_option("--out,-o", a->out, "New model directory to create")->required();
  sub->add_flag("--symmetric", a->symmetric,
                "Symmetric scales (offset 0, as ModelSlim's recipe); default asymmetric min/max");
  sub->add_option("--seq-len", a->seq_len, "Tokens per calibration sequence")
      ->capture_default_str();
  return [a, sub]() {
    if (!sub->parsed()) return kNotParsed;
    auto fail = [](const std::string& m) { return CommandError("calibrate", m); };
    // Calibration only prefills: the cache is written, never read, so its dtype is moot.
    auto job = LoadTextJob(a->job, "bf16", a->seq_len);
    if (!job.ok()) return fail(job.message());
    ModelBundle& m = *job->bundle;
    const std::vector<int32_t>& tokens = job->tokens;
    CalibrationOptions co;
    co.seq_len = a->seq_len;
    co.max_tokens = a->job.max_tokens;
    co.symmetric = a->symmetric;
    co.progress = StderrProgress();
    KvRangeStats stats;
    auto scales = CalibrateKv(m, tokens, co, &stats);
    if (!scales.ok()) return fail(scales.message());
    auto ws = WeightStore::Open(a->job.model);
    if (!ws.ok()) return fail(ws.message());
    std::map<std::string, std::string> md = {
        {"c8_calibration", a->symmetric ? "symmetric min/max" : "asymmetric min/max"},
        {"c8_calibration_tokens", std::to_string(stats.tokens)},
        {"c8_calibration_data", a->job.data}};
    Status st = WriteC8ModelDir(a->job.model, a->out, *ws, *scales, md);
    if (!st.ok()) return fail(st.message());
    // Widest K/V range per layer, for the log.
    float kmax = 0, vmax = 0;
    for (size_t l = 0; l < stats.k_min.size(); ++l) {
      for (size_t c = 0; c < stats.k_min[l].size(); ++c) {
        kmax = std::max({kmax, std::fabs(stats.k_min[l][c]), std::fabs(stats.k_max[l][c])});
        vmax = std::max({vmax, std::fabs(stats.v_min[l][c]), std::fabs(stats.v_max[l][c])});
      }
    }
    std::fprintf(stderr,
                 "c8 calibrate: %lld tokens, %zu layers, max |K| %.3g, max |V| %.3g -> %s "
                 "(kv_cache_type C8)\n",
                 static_cast<long long>(stats.tokens), scales->size(), kmax, vmax, a->out.c_str());
    return 0;
  };
}

}  // namespace c8::cli
