#include "c8/cli/text_job.h"

#include <cstdio>
#include <fstream>
#include <sstream>

namespace c8::cli {

void TextJobArgs::Add(CLI::App* sub, const std::string& model_help, const std::string& data_help) {
  sub->add_option("--model,-m", model, model_help)->required();
  sub->add_option("--data", data, data_help)->required();
  sub->add_option("--max-tokens", max_tokens, "Use at most this many tokens (0 = all)");
  sub->add_option("--device", device, "auto | cpu | cuda")->capture_default_str();
  sub->add_option("--threads", threads, "CPU threads (0 = all cores)");
  sub->add_option("--tensor-parallel-size", tensor_parallel_size, "Tensor-parallel ranks")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
}

Result<TextJob> LoadTextJob(const TextJobArgs& a, const std::string& kv, int64_t max_len) {
  std::ifstream in(a.data, std::ios::binary);
  if (!in) return Error(a.data + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().empty()) return Error(a.data + ": empty file");
  EngineOptions eo;
  eo.model_dir = a.model;
  eo.backend.device = a.device;
  eo.backend.num_threads = a.threads;
  eo.tensor_parallel_size = a.tensor_parallel_size;
  eo.kv_cache_dtype = kv;
  eo.max_model_len = max_len;
  eo.kv_cache_gib = 0;  // one sequence at a time: one full context
  eo.progress = StderrProgress();
  TextJob job;
  C8_ASSIGN_OR_RETURN(job.bundle, ModelBundle::Load(eo));
  if (!job.bundle->tokenizer) return Error(a.model + ": no tokenizer.json");
  job.tokens = job.bundle->tokenizer->Encode(ss.str(), /*parse_special=*/false);
  if (job.tokens.empty()) return Error(a.data + ": no tokens");
  return job;
}

int CommandError(const char* cmd, const std::string& message) {
  std::fprintf(stderr, "c8 %s: error: %s\n", cmd, message.c_str());
  return 1;
}

}  // namespace c8::cli
