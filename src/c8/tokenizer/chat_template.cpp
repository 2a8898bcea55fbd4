#include "c8/tokenizer/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace c8 {
namespace {

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Error(path + ": cannot open file");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Error(path + ": read failed");
  return ss.str();
}

// Converts nlohmann::json (sorted keys) to ordered_json without throwing.
nlohmann::ordered_json ToOrdered(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::object: {
      nlohmann::ordered_json o = nlohmann::ordered_json::object();
      for (auto it = j.begin(); it != j.end(); ++it) o[it.key()] = ToOrdered(it.value());
      return o;
    }
    case nlohmann::json::value_t::array: {
      nlohmann::ordered_json a = nlohmann::ordered_json::array();
      for (const auto& e : j) a.push_back(ToOrdered(e));
      return a;
    }
    case nlohmann::json::value_t::string:
      return j.get<std::string>();
    case nlohmann::json::value_t::boolean:
      return j.get<bool>();
    case nlohmann::json::value_t::number_integer:
      return j.get<int64_t>();
    case nlohmann::json::value_t::number_unsigned:
      return j.get<uint64_t>();
    case nlohmann::json::value_t::number_float:
      return j.get<double>();
    default:
      return nullptr;
  }
}

// A special token entry: string, {"content": string}, or null/absent -> "".
Result<std::string> TokenString(const nlohmann::ordered_json& config, const std::string& key,
                                const std::string& path) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  return Error(path + ": key '" + key + "' must be a string or an object with a string 'content'");
}

Result<std::shared_ptr<const jinja::Template>> Compile(const std::string& source,
                                                       const std::string& where) {
  auto t = jinja::Template::Parse(source);
  if (!t.ok()) return Error(where + ": " + t.message());
  return std::make_shared<const jinja::Template>(std::move(t).value());
}

}  // namespace

nlohmann::ordered_json ChatMessage::ToJson() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["role"] = role;
  j["content"] = content;
  if (extra.is_object())
    for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  return j;
}

nlohmann::ordered_json ChatMessagesToJson(const std::vector<ChatMessage>& messages) {
  nlohmann::ordered_json a = nlohmann::ordered_json::array();
  for (const auto& m : messages) a.push_back(m.ToJson());
  return a;
}

Result<ChatTemplate> ChatTemplate::FromTokenizerConfig(const std::string& path) {
  C8_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  nlohmann::ordered_json config =
      nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) return Error(path + ": not valid JSON");
  if (!config.is_object()) return Error(path + ": top level must be a JSON object");

  ChatTemplate ct;
  ct.origin_ = path;
  std::string tool_use_source;
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) {
    namespace fs = std::filesystem;
    fs::path sibling = fs::path(path).parent_path() / "chat_template.jinja";
    std::error_code ec;
    if (!fs::exists(sibling, ec))
      return Error(path + ": no 'chat_template' key (and no chat_template.jinja next to it)");
    C8_ASSIGN_OR_RETURN(ct.source_, ReadFile(sibling.string()));
    ct.origin_ = sibling.string();
  } else if (it->is_string()) {
    ct.source_ = it->get<std::string>();
  } else if (it->is_array()) {
    bool found = false;
    for (const auto& entry : *it) {
      if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") ||
          !entry["name"].is_string() || !entry["template"].is_string())
        return Error(path +
                     ": key 'chat_template': list entries must be {\"name\": string, "
                     "\"template\": string}");
      std::string name = entry["name"].get<std::string>();
      if (name == "default") {
        ct.source_ = entry["template"].get<std::string>();
        found = true;
      } else if (name == "tool_use") {
        tool_use_source = entry["template"].get<std::string>();
      }
    }
    if (!found) return Error(path + ": key 'chat_template': no template named 'default'");
  } else {
    return Error(path + ": key 'chat_template' must be a string or a list of {name, template}");
  }

  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    C8_ASSIGN_OR_RETURN(std::string tok, TokenString(config, key, path));
    if (!tok.empty()) ct.special_tokens_.emplace_back(key, tok);
  }
  C8_ASSIGN_OR_RETURN(ct.template_, Compile(ct.source_, ct.origin_ + ": key 'chat_template'"));
  if (!tool_use_source.empty()) {
    C8_ASSIGN_OR_RETURN(ct.tool_use_,
                        Compile(tool_use_source, path + ": chat_template 'tool_use'"));
  }
  return ct;
}

Result<ChatTemplate> ChatTemplate::FromString(std::string source, std::string bos_token,
                                              std::string eos_token) {
  ChatTemplate ct;
  ct.origin_ = "chat template";
  ct.source_ = std::move(source);
  if (!bos_token.empty()) ct.special_tokens_.emplace_back("bos_token", std::move(bos_token));
  if (!eos_token.empty()) ct.special_tokens_.emplace_back("eos_token", std::move(eos_token));
  C8_ASSIGN_OR_RETURN(ct.template_, Compile(ct.source_, ct.origin_));
  return ct;
}

Result<std::string> ChatTemplate::Apply(const nlohmann::ordered_json& messages,
                                        bool add_generation_prompt,
                                        const nlohmann::ordered_json& extra_context) const {
  if (!template_) return Error("chat template: not loaded");
  if (!messages.is_array())
    return Error(origin_ + ": messages must be a JSON array of message objects, got " +
                 std::string(messages.type_name()));
  if (!extra_context.is_null() && !extra_context.is_object())
    return Error(origin_ + ": extra_context must be a JSON object, got " +
                 std::string(extra_context.type_name()));
  std::vector<std::pair<std::string, jinja::Value>> ctx;
  try {
    ctx.emplace_back("messages", jinja::Value::FromJson(messages));
    ctx.emplace_back("tools", jinja::Value::None());
    ctx.emplace_back("documents", jinja::Value::None());
    ctx.emplace_back("add_generation_prompt", jinja::Value(add_generation_prompt));
    for (const auto& [k, v] : special_tokens_) ctx.emplace_back(k, jinja::Value(v));
    if (extra_context.is_object()) {
      for (auto it = extra_context.begin(); it != extra_context.end(); ++it) {
        jinja::Value v = jinja::Value::FromJson(it.value());
        bool replaced = false;
        for (auto& [k, old] : ctx) {
          if (k == it.key()) {
            old = v;
            replaced = true;
          }
        }
        if (!replaced) ctx.emplace_back(it.key(), v);
      }
    }
  } catch (const std::exception& e) {
    return Error(origin_ + ": " + e.what());
  }
  const jinja::Template* t = template_.get();
  if (tool_use_ && extra_context.is_object() && extra_context.contains("tools") &&
      !extra_context["tools"].is_null())
    t = tool_use_.get();
  auto out = t->Render(ctx);
  if (!out.ok()) return Error(origin_ + ": " + out.message());
  return out;
}

Result<std::string> ChatTemplate::Apply(const nlohmann::json& messages, bool add_generation_prompt,
                                        const nlohmann::json& extra_context) const {
  return Apply(ToOrdered(messages), add_generation_prompt, ToOrdered(extra_context));
}

Result<std::string> ChatTemplate::Apply(const std::vector<ChatMessage>& messages,
                                        bool add_generation_prompt,
                                        const nlohmann::ordered_json& extra_context) const {
  return Apply(ChatMessagesToJson(messages), add_generation_prompt, extra_context);
}

}  // namespace c8
