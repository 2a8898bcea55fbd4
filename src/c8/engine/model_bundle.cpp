#include "c8/engine/model_bundle.h"

#include <filesystem>

namespace c8 {
namespace fs = std::filesystem;

Result<std::unique_ptr<ModelBundle>> ModelBundle::Load(const EngineOptions& o) {
  auto b = std::make_unique<ModelBundle>();
  C8_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(o.model_dir));
  const bool dummy = o.load_format == "dummy";
  C8_ASSIGN_OR_RETURN(b->executor, Executor::Create(o));
  b->kv_summary = b->executor->kv_summary();
  const std::string tok_path = (fs::path(o.model_dir) / "tokenizer.json").string();
  if (!dummy || fs::exists(tok_path)) {
    C8_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::FromFile(tok_path));
    b->tokenizer.emplace(std::move(tok));
  }
  const std::string tc_path = (fs::path(o.model_dir) / "tokenizer_config.json").string();
  auto tmpl = ChatTemplate::FromTokenizerConfig(tc_path);
  if (tmpl.ok()) {
    b->chat_template.emplace(std::move(tmpl).value());
  } else {
    b->chat_template_error = tmpl.message();
  }
  C8_ASSIGN_OR_RETURN(b->defaults, LoadGenerationDefaults(o.model_dir, config.eos_token_ids));
  return b;
}

std::vector<int32_t> ModelBundle::EncodePrompt(const std::string& text) const {
  std::vector<int32_t> ids;
  if (!tokenizer) return ids;
  if (defaults.add_bos_token && !defaults.bos_token.empty() &&
      text.rfind(defaults.bos_token, 0) != 0) {
    int32_t bos = tokenizer->TokenToId(defaults.bos_token);
    if (bos >= 0) ids.push_back(bos);
  }
  std::vector<int32_t> rest = tokenizer->Encode(text, /*parse_special=*/true);
  ids.insert(ids.end(), rest.begin(), rest.end());
  return ids;
}

Result<std::vector<int32_t>> ModelBundle::EncodeChat(const nlohmann::json& messages,
                                                     const nlohmann::json& extra) const {
  if (!chat_template || !tokenizer) {
    return Error("this model has no chat template: " + chat_template_error);
  }
  C8_ASSIGN_OR_RETURN(std::string text, chat_template->Apply(messages, true, extra));
  // Templates emit BOS themselves where the model wants one.
  return tokenizer->Encode(text, /*parse_special=*/true);
}

}  // namespace c8
