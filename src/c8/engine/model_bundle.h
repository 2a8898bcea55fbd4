// Everything loaded from one model directory for serving: the executor (workers with the
// weights and the paged KV cache on their devices), tokenizer, chat template and generation
// defaults.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "c8/engine/generation_config.h"
#include "c8/runner/engine_options.h"
#include "c8/runner/executor.h"
#include "c8/runner/kv_layers.h"
#include "c8/tokenizer/chat_template.h"
#include "c8/tokenizer/tokenizer.h"
#include "c8/util/progress.h"

namespace c8 {

struct ModelBundle {
  std::unique_ptr<Executor> executor;
  std::optional<Tokenizer> tokenizer;  // absent only for dummy weights without tokenizer.json
  std::optional<ChatTemplate> chat_template;  // absent when the model ships none
  std::string chat_template_error;            // why it is absent
  GenerationDefaults defaults;
  std::string kv_summary;  // how the KV cache was sized and how many tokens fit per dtype

  static Result<std::unique_ptr<ModelBundle>> Load(const EngineOptions& options);

  // Tokenizes a plain prompt (adding BOS when tokenizer_config.json asks for it).
  std::vector<int32_t> EncodePrompt(const std::string& text) const;
  // Renders the chat template (add_generation_prompt) and tokenizes the result.
  Result<std::vector<int32_t>> EncodeChat(const nlohmann::json& messages,
                                          const nlohmann::json& extra = {}) const;
};

}  // namespace c8
