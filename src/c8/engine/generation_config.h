// Defaults a model directory ships for generation: generation_config.json (eos ids and
// sampling defaults, applied like vLLM's --generation-config auto) and the special-token
// settings of tokenizer_config.json.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "c8/sampling/sampling_params.h"
#include "c8/util/status.h"

namespace c8 {

struct GenerationDefaults {
  std::vector<int32_t> eos_token_ids;
  std::optional<double> temperature, top_p, min_p, repetition_penalty;
  std::optional<int32_t> top_k;
  bool add_bos_token = false;
  std::string bos_token;

  // Fills the fields a request left at their "unset" value. `explicit_fields` lists the
  // fields the request set itself (names as in SamplingParams).
  void ApplyTo(SamplingParams& params, const std::vector<std::string>& explicit_fields) const;
};

// Reads <dir>/generation_config.json and <dir>/tokenizer_config.json (both optional);
// config_eos are the ids from config.json, used when generation_config.json has none.
Result<GenerationDefaults> LoadGenerationDefaults(const std::string& model_dir,
                                                  const std::vector<int64_t>& config_eos);

}  // namespace c8
