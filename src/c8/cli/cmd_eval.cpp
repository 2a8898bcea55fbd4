// `c8 eval`: perplexity and KL divergence of one KV-cache dtype (default: the checkpoint's,
// i.e. C8 int8) against a 16-bit reference, on text decoded token by token from the cache.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "c8/cli/commands.h"
#include "c8/cli/text_file.h"
#include "c8/engine/kv_eval.h"
#include "c8/engine/model_bundle.h"

namespace c8::cli {

Runner RegisterEval(CLI::App& app) {
  struct Args {
    std::string model, data, device = "auto", kv = "auto", ref_kv = "bf16";
    int64_t window = 512, parallel = 16, max_tokens = 0;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "eval",
      "Perplexity and mean KL divergence of the KV cache (default: C8 int8) against a 16-bit "
      "KV cache on a text; prints one JSON line");
  sub->add_option("--model,-m", a->model, "Model directory")->required();
  sub->add_option("--data", a->data, "Evaluation text file (UTF-8)")->required();
  sub->add_option("--kv-cache-dtype", a->kv, "KV dtype under test: auto | int8 | bf16 | fp32")
      ->capture_default_str();
  sub->add_option("--reference-kv-cache-dtype", a->ref_kv, "Reference KV dtype: bf16 | fp32")
      ->capture_default_str();
  sub->add_option("--window", a->window, "Context length of each scored window")
      ->capture_default_str();
  sub->add_option("--parallel", a->parallel, "Windows decoded together per step")
      ->capture_default_str();
  sub->add_option("--max-tokens", a->max_tokens, "Score at most this many tokens (0 = all)");
  sub->add_option("--device", a->device, "auto | cpu | cuda")->capture_default_str();
  sub->add_option("--threads", a->threads, "CPU threads (0 = all cores)");
  return [a, sub]() {
    if (!sub->parsed()) return kNotParsed;
    auto fail = [](const std::string& m) {
      std::fprintf(stderr, "c8 eval: error: %s\n", m.c_str());
      return 1;
    };
    auto text = ReadTextFile(a->data);
    if (!text.ok()) return fail(text.message());
    EngineOptions eo;
    eo.model_dir = a->model;
    eo.backend.device = a->device;
    eo.backend.num_threads = a->threads;
    eo.kv_cache_dtype = a->ref_kv;
    eo.max_model_len = a->window;
    eo.progress = StderrProgress();
    auto bundle = ModelBundle::Load(eo);
    if (!bundle.ok()) return fail(bundle.message());
    ModelBundle& m = **bundle;
    const ModelConfig& c = m.model->config();
    auto ref = ResolveKvLayers(a->model, c, a->ref_kv);
    if (!ref.ok()) return fail(ref.message());
    auto test = ResolveKvLayers(a->model, c, a->kv);
    if (!test.ok()) return fail(test.message());
    std::vector<int32_t> tokens = m.tokenizer->Encode(*text, /*parse_special=*/false);
    KvEvalOptions ko;
    ko.window = a->window;
    ko.parallel = a->parallel;
    ko.max_tokens = a->max_tokens;
    ko.progress = StderrProgress();
    auto r = EvaluateKv(*m.model, *ref, *test, tokens, ko);
    if (!r.ok()) return fail(r.message());
    int64_t c8_layers = 0;
    for (const auto& l : *test) c8_layers += l.dtype == KvDType::kInt8;
    nlohmann::json j = {{"model", a->model},       {"data", a->data},
                        {"kv_cache_dtype", a->kv}, {"reference_kv_cache_dtype", a->ref_kv},
                        {"c8_layers", c8_layers},  {"tokens_scored", r->tokens_scored},
                        {"window", a->window},     {"ppl_reference", r->ppl_ref},
                        {"ppl", r->ppl_test},      {"ppl_increase_pct", r->ppl_increase_pct},
                        {"mean_kl", r->mean_kl},   {"top1_agreement", r->top1_agreement}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  };
}

}  // namespace c8::cli
