// Chat templates: renders a conversation into the prompt text a model
// expects, exactly as HF transformers' tokenizer.apply_chat_template(...,
// tokenize=False) does, using the Jinja template shipped in
// tokenizer_config.json (SmolLM2, Qwen2/2.5/3 and other ChatML-family
// templates). See jinja_interpreter.h for the supported Jinja subset.
//
// Messages are JSON objects ({"role", "content", and any other field such as
// "reasoning_content", "tool_calls", "name"}); they reach the template as is,
// so content may also be a list of parts or null. Key order is kept
// (nlohmann::ordered_json), which matters for `tojson` of tool schemas.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "c8/tokenizer/jinja_interpreter.h"
#include "c8/util/status.h"

namespace c8 {

// Convenience form of one message. Fields in `extra` are merged into the JSON
// object (and override role/content when they use the same keys, e.g. a
// list-of-parts "content").
struct ChatMessage {
  std::string role;
  std::string content;
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();

  nlohmann::ordered_json ToJson() const;
};

nlohmann::ordered_json ChatMessagesToJson(const std::vector<ChatMessage>& messages);

class ChatTemplate {
 public:
  // Loads the template from a tokenizer_config.json: "chat_template" may be a
  // string or a list of {"name", "template"} (then "default" is used, and
  // "tool_use" when tools are given); when the key is absent, a sibling
  // chat_template.jinja is used as newer transformers versions save it.
  // bos_token/eos_token/unk_token/pad_token may be strings, AddedToken
  // objects {"content": ...} or null (null = undefined in the template).
  static Result<ChatTemplate> FromTokenizerConfig(const std::string& tokenizer_config_json_path);
  // Parses `source`; an empty token string leaves that variable undefined.
  static Result<ChatTemplate> FromString(std::string source, std::string bos_token,
                                         std::string eos_token);

  // Renders `messages` (a JSON array). The template sees: messages,
  // add_generation_prompt, tools=None, documents=None, the special tokens, and
  // every key of `extra_context` (an object or null), e.g. "tools",
  // "enable_thinking"; those override the defaults.
  Result<std::string> Apply(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                            const nlohmann::ordered_json& extra_context = nullptr) const;
  Result<std::string> Apply(const nlohmann::json& messages, bool add_generation_prompt,
                            const nlohmann::json& extra_context = nullptr) const;
  Result<std::string> Apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                            const nlohmann::ordered_json& extra_context = nullptr) const;

  const std::string& source() const { return source_; }
  bool has_tool_use_template() const { return tool_use_ != nullptr; }

 private:
  std::string origin_;  // file path or "<string>", for error messages
  std::string source_;
  std::shared_ptr<const jinja::Template> template_;
  std::shared_ptr<const jinja::Template> tool_use_;  // optional "tool_use" variant
  std::vector<std::pair<std::string, std::string>> special_tokens_;
};

}  // namespace c8
