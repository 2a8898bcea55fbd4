#include "c8/runner/kv_layers.h"

#include "c8/formats/c8_checkpoint.h"
#include "c8/formats/safetensors.h"
#include "c8/model/weight_loader.h"

namespace c8 {

Result<std::vector<KvLayerConfig>> ResolveKvLayers(const std::string& model_dir,
                                                   const ModelConfig& c, const std::string& want,
                                                   bool dummy) {
  if (want != "auto" && !ParseKvDType(want)) {
    return Error("--kv-cache-dtype: unknown value '" + want + "' (auto, bf16, fp32, int8)");
  }
  C8Checkpoint ckpt;
  ckpt.layers.resize(c.num_layers);
  if (dummy && want == "int8") {
    ckpt.present = true;
    const int64_t n = c.num_kv_heads * c.head_dim;
    for (int64_t l = 0; l < c.num_layers; ++l) {
      C8LayerScales s;
      s.k_scale.resize(n);
      s.v_scale.resize(n);
      FillDummyWeights("k_scale" + std::to_string(l), 0, 0.05f, 0.01f, s.k_scale.data(), n);
      FillDummyWeights("v_scale" + std::to_string(l), 0, 0.05f, 0.01f, s.v_scale.data(), n);
      s.k_offset.assign(n, 0.0f);
      s.v_offset.assign(n, 0.0f);
      ckpt.layers[l] = std::move(s);
    }
  } else if (!dummy && (want == "auto" || want == "int8")) {
    C8_ASSIGN_OR_RETURN(WeightStore ws, WeightStore::Open(model_dir));
    C8_ASSIGN_OR_RETURN(ckpt, LoadC8Checkpoint(model_dir, c, ws));
  }
  if (want == "int8" && !ckpt.present) {
    return Error("--kv-cache-dtype int8: " + model_dir +
                 " has no C8 scales (quant_model_description.json with kv_cache_type C8; "
                 "make them with `c8 calibrate`)");
  }
  std::vector<KvLayerConfig> layers(c.num_layers);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    KvLayerConfig& lc = layers[l];
    if (ckpt.layers[l]) {
      lc.dtype = KvDType::kInt8;
      const C8LayerScales& s = *ckpt.layers[l];
      lc.c8 = C8LayerParams{s.k_scale, s.k_offset, s.v_scale, s.v_offset};
    } else {
      lc.dtype = want == "fp32" ? KvDType::kF32 : KvDType::kBF16;
    }
  }
  return layers;
}

}  // namespace c8
