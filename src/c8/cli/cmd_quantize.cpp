// `c8 quantize`: a ModelSlim-format W8A8 / W8A8_DYNAMIC (optionally W8A8C8) checkpoint from a
// 16-bit Hugging Face directory and calibration text.
#include <cstdio>
#include <memory>

#include "c8/cli/commands.h"
#include "c8/cli/text_job.h"
#include "c8/engine/weight_quantization.h"
#include "c8/formats/safetensors.h"

namespace c8::cli {

Runner RegisterQuantize(CLI::App& app) {
  struct Args {
    TextJobArgs job;
    std::string out, scheme = "w8a8", kv = "none";
    int64_t seq_len = 512;
    bool symmetric_kv = false;
    float smooth_alpha = 0.8f;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "quantize",
      "Quantize a 16-bit model into a ModelSlim W8A8 / W8A8_DYNAMIC checkpoint (int8 weights, "
      "per-channel symmetric; static activation ranges from calibration text for W8A8), with "
      "C8 KV-cache scales when --kv c8");
  a->job.Add(sub, "Source model directory (16-bit Hugging Face layout)",
             "Calibration text file (UTF-8)");
  sub->add_option("--out,-o", a->out, "New model directory to create")->required();
  sub->add_option("--scheme", a->scheme,
                  "w8a8 (static activations) | w8a8_dynamic (per-token) | w8a8_mix (attention "
                  "static, MLP dynamic: msModelSlim's DeepSeek recipe)")
      ->check(CLI::IsMember({"w8a8", "w8a8_dynamic", "w8a8_mix"}))
      ->capture_default_str();
  sub->add_option("--kv", a->kv, "KV cache: none | c8 (calibrated on the quantized model)")
      ->check(CLI::IsMember({"none", "c8"}))
      ->capture_default_str();
  sub->add_flag("--symmetric-kv", a->symmetric_kv, "Symmetric C8 scales (offset 0)");
  sub->add_option("--smooth-alpha", a->smooth_alpha,
                  "SmoothQuant migration strength in [0, 1] (0: no smoothing); the scales are "
                  "folded into the norm weights and the v_proj / up_proj rows")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  sub->add_option("--seq-len", a->seq_len, "Tokens per calibration sequence")
      ->capture_default_str();
  return [a, sub]() {
    if (!sub->parsed()) return kNotParsed;
    auto fail = [](const std::string& m) { return CommandError("quantize", m); };
    ModelSlimWriteOptions wo;
    wo.scheme = a->scheme == "w8a8"           ? "W8A8"
                : a->scheme == "w8a8_dynamic" ? "W8A8_DYNAMIC"
                                              : "W8A8_MIX";
    wo.metadata = {{"c8_quantization", wo.scheme}, {"c8_calibration_data", a->job.data}};
    CalibrationOptions co;
    co.seq_len = a->seq_len;
    co.max_tokens = a->job.max_tokens;
    co.symmetric = a->symmetric_kv;
    co.progress = StderrProgress();
    ModelConfig config;
    ActivationStats stats;
    {
      auto job = LoadTextJob(a->job, "bf16", a->seq_len);
      if (!job.ok()) return fail(job.message());
      config = job->bundle->executor->config();
      auto s = CalibrateActivations(*job->bundle, job->tokens, co);
      if (!s.ok()) return fail(s.message());
      stats = std::move(s).value();
    }
    auto ws = WeightStore::Open(a->job.model);
    if (!ws.ok()) return fail(ws.message());
    if (Status st = PlanQuantization(stats, *ws, config, a->smooth_alpha, &wo); !st.ok()) {
      return fail(st.message());
    }
    wo.metadata["c8_smooth_alpha"] = std::to_string(a->smooth_alpha);
    std::fprintf(stderr, "c8 quantize: writing %s (%s)\n", a->out.c_str(), wo.scheme.c_str());
    if (Status st = WriteModelSlimCheckpoint(a->job.model, a->out, config, *ws, wo); !st.ok()) {
      return fail(st.message());
    }
    if (a->kv == "c8") {
      // The K/V the quantized model will serve: calibrate on it, then write again with them.
      std::vector<C8LayerScales> scales;
      {
        TextJobArgs qa = a->job;
        qa.model = a->out;
        auto job = LoadTextJob(qa, "bf16", a->seq_len);
        if (!job.ok()) return fail(job.message());
        auto s = CalibrateKv(*job->bundle, job->tokens, co);
        if (!s.ok()) return fail(s.message());
        scales = std::move(s).value();
      }
      wo.kv_scales = std::move(scales);
      wo.overwrite = true;
      if (Status st = WriteModelSlimCheckpoint(a->job.model, a->out, config, *ws, wo); !st.ok()) {
        return fail(st.message());
      }
    }
    std::fprintf(stderr, "c8 quantize: %s -> %s (%s%s)\n", a->job.model.c_str(), a->out.c_str(),
                 wo.scheme.c_str(), a->kv == "c8" ? " + C8 KV cache" : "");
    return 0;
  };
}

}  // namespace c8::cli
