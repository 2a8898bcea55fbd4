// Shared by the commands that run a model over a text file (`calibrate`, `eval`): the
// common flags, reading the text, loading the model and tokenizing.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "c8/engine/model_bundle.h"

namespace c8::cli {

struct TextJobArgs {
  std::string model, data, device = "auto";
  int threads = 0;
  int tensor_parallel_size = 1;
  int64_t max_tokens = 0;
  // Adds --model --data --max-tokens --device --threads --tensor-parallel-size.
  void Add(CLI::App* sub, const std::string& model_help, const std::string& data_help);
};

struct TextJob {
  std::unique_ptr<ModelBundle> bundle;
  std::vector<int32_t> tokens;  // the whole text, special tokens not parsed
};

// Reads args.data (UTF-8 text file), loads args.model with a `kv_cache_dtype` cache sized for
// one sequence of `max_len` tokens, and tokenizes the text. Errors name the file.
Result<TextJob> LoadTextJob(const TextJobArgs& args, const std::string& kv_cache_dtype,
                            int64_t max_len);

// Prints "c8 CMD: error: MESSAGE" and returns exit code 1.
int CommandError(const char* cmd, const std::string& message);

}  // namespace c8::cli
