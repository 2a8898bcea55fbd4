// Options of the HTTP front of `c8 serve` (the engine's own options are EngineOptions and
// EngineConfig).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace c8 {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0: any free port (HttpServer::port() tells which)
  // When set, /v1/* requests need "Authorization: Bearer <api_key>" (/health, /version and
  // /metrics stay open).
  std::string api_key;
  std::string served_model_name;  // the "model" clients name; others get 404
  std::string model_dir;          // shown as "root" in /v1/models
  std::string version = "0.0.0";
  size_t max_body_bytes = 8u << 20;  // larger bodies get 413
  int http_threads = 0;              // worker threads; 0: max_num_seqs + 16 (at most 1024)
  int32_t max_num_seqs = 256;
  bool return_tokens_as_token_ids = false;  // logprobs tokens as "token_id:<id>"
  // vLLM's --enable-auto-tool-choice / --tool-call-parser (only "hermes": Qwen / Hermes
  // <tool_call> JSON); both are needed for tool_choice "auto".
  bool enable_auto_tool_choice = false;
  std::string tool_call_parser;
};

}  // namespace c8
