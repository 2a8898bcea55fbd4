// `c8 eval`: perplexity and KL divergence of one KV-cache dtype (default: the checkpoint's,
// i.e. C8 int8) against a 16-bit reference, on text decoded token by token from the cache.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "c8/cli/commands.h"
#include "c8/cli/text_job.h"
#include "c8/engine/kv_eval.h"
#include "c8/engine/model_bundle.h"

namespace c8::cli {

Runner RegisterEval(CLI::App& app) {
  struct Args {
    TextJobArgs job;
    std::string kv = "auto", ref_kv = "bf16", ref_model;
    int64_t window = 512, parallel = 16;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "eval",
      "Perplexity and mean KL divergence of the KV cache (default: C8 int8) against a 16-bit "
      "KV cache on a text, or of a model (e.g. W8A8C8) against a reference model "
      "(--reference-model); prints one JSON line");
  a->job.Add(sub, "Model directory", "Evaluation text file (UTF-8)");
  sub->add_option("--kv-cache-dtype", a->kv, "KV dtype under test: auto | int8 | bf16 | fp32")
      ->capture_default_str();
  sub->add_option("--reference-kv-cache-dtype", a->ref_kv, "Reference KV dtype: bf16 | fp32")
      ->capture_default_str();
  sub->add_option("--reference-model", a->ref_model,
                  "Compare weight schemes: a reference model directory (e.g. the 16-bit model a "
                  "W8A8 / W8A8C8 checkpoint came from), run with --reference-kv-cache-dtype; "
                  "--model runs with --kv-cache-dtype");
  sub->add_option("--window", a->window, "Context length of each scored window")
      ->capture_default_str();
  sub->add_option("--parallel", a->parallel, "Windows decoded together per step")
      ->capture_default_str();
  return [a, sub]() {
    if (!sub->parsed()) return kNotParsed;
    auto fail = [](const std::string& m) { return CommandError("eval", m); };
    auto job = LoadTextJob(a->job, a->ref_kv, a->window);
    if (!job.ok()) return fail(job.message());
    ModelBundle& m = *job->bundle;
    const ModelConfig& c = m.executor->config();
    auto ref = ResolveKvLayers(a->job.model, c, a->ref_kv);
    if (!ref.ok()) return fail(ref.message());
    auto test = ResolveKvLayers(a->job.model, c, a->kv);
    if (!test.ok()) return fail(test.message());
    const std::vector<int32_t>& tokens = job->tokens;
    KvEvalOptions ko;
    ko.window = a->window;
    ko.parallel = a->parallel;
    ko.max_tokens = a->job.max_tokens;
    ko.progress = StderrProgress();
    Result<KvEvalResult> r = Error("unreachable");
    std::string ref_weights;
    if (a->ref_model.empty()) {
      r = EvaluateKv(*m.executor, *ref, *test, tokens, ko);
    } else {
      // The reference model with its own KV configuration; the text's tokens are the same
      // (one vocabulary), checked by EvaluateModels.
      TextJobArgs ra = a->job;
      ra.model = a->ref_model;
      auto rjob = LoadTextJob(ra, a->ref_kv, a->window);
      if (!rjob.ok()) return fail(rjob.message());
      if (rjob->tokens != tokens) {
        return fail("--reference-model " + a->ref_model + " tokenizes the text differently");
      }
      auto rref = ResolveKvLayers(a->ref_model, rjob->bundle->executor->config(), a->ref_kv);
      if (!rref.ok()) return fail(rref.message());
      r = EvaluateModels(*rjob->bundle->executor, *rref, *m.executor, *test, tokens, ko);
      ref_weights = rjob->bundle->executor->worker(0).model().quant_summary();
    }
    if (!r.ok()) return fail(r.message());
    int64_t c8_layers = 0;
    for (const auto& l : *test) c8_layers += l.dtype == KvDType::kInt8;
    nlohmann::json j = {{"model", a->job.model},
                        {"data", a->job.data},
                        {"kv_cache_dtype", a->kv},
                        {"reference_kv_cache_dtype", a->ref_kv},
                        {"c8_layers", c8_layers},
                        {"tokens_scored", r->tokens_scored},
                        {"window", a->window},
                        {"ppl_reference", r->ppl_ref},
                        {"ppl", r->ppl_test},
                        {"ppl_increase_pct", r->ppl_increase_pct},
                        {"mean_kl", r->mean_kl},
                        {"top1_agreement", r->top1_agreement},
                        {"linears", m.executor->worker(0).model().quant_summary()}};
    if (!a->ref_model.empty()) {
      j["reference_model"] = a->ref_model;
      j["reference_linears"] = ref_weights;
    }
    std::printf("%s\n", j.dump().c_str());
    return 0;
  };
}

}  // namespace c8::cli
