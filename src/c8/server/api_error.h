// An OpenAI-style API error: HTTP status plus the body
//   {"error": {"message": ..., "type": ..., "param": ... | null, "code": ... | null}}.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace c8 {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // "" -> null
  std::string code;   // "" -> null

  nlohmann::json ToJson() const {
    nlohmann::json e = {{"message", message},
                        {"type", type},
                        {"param", param.empty() ? nlohmann::json() : nlohmann::json(param)},
                        {"code", code.empty() ? nlohmann::json() : nlohmann::json(code)}};
    return {{"error", e}};
  }
};

inline ApiError BadRequest(std::string message, std::string param = "") {
  return ApiError{400, std::move(message), "invalid_request_error", std::move(param), ""};
}

// Serializes JSON for the wire; invalid UTF-8 (e.g. a token that is part of a multi-byte
// character) becomes U+FFFD instead of throwing.
inline std::string DumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
inline std::string DumpJson(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace c8
