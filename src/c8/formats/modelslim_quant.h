// The weight-quantization part of a ModelSlim checkpoint's quant_model_description.json
// (../shared/reference/next-wave-facts.md A.1): a flat object mapping every tensor name to its
// layer's quant type ("W8A8", "W8A8_DYNAMIC", "FLOAT", ...) plus "model_quant_type". The type
// of a linear layer is the entry of its ".weight"; a linear with no entry is FLOAT. The KV-cache
// part (kv_cache_type C8) is read by c8_checkpoint.h.
#pragma once

#include <map>
#include <string>

#include "c8/backend/linear_weight.h"
#include "c8/util/status.h"

namespace c8 {

struct ModelSlimQuant {
  bool present = false;                      // the description file exists
  std::string path;                          // its path (error messages)
  std::string model_quant_type;              // e.g. "W8A8", "W8A8_DYNAMIC"; "" when absent
  std::map<std::string, std::string> types;  // tensor name -> quant type

  // The scheme of linear `prefix` (e.g. "model.layers.0.self_attn.q_proj"): FLOAT, W8A8 or
  // W8A8_DYNAMIC; any other type is an error naming the tensor and the file.
  Result<LinearQuant> LinearType(const std::string& prefix) const;
};

// Reads <dir>/quant_model_description.json; absent file: present = false (everything FLOAT).
Result<ModelSlimQuant> LoadModelSlimQuant(const std::string& model_dir);

}  // namespace c8
