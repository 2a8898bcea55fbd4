// Loads one linear layer of a tensor-parallel rank as a LinearWeight: 16-bit weights through
// the WeightLoader, or ModelSlim W8A8 / W8A8_DYNAMIC int8 weights with their companion
// tensors (../shared/reference/next-wave-facts.md A.2-A.4), validated, sliced for the rank and
// fused (q|k|v, gate|up) into one int8 matrix with one activation quantization.
//
// Static W8A8 folding (linear_weight.h): scale = deq_scale, shift = quant_bias * deq_scale.
// Fused parts whose input_scale / input_offset differ are brought onto the first part's
// (deq' = deq * s_ref / s_p, shift recomputed from the float bias the checkpoint folded into
// quant_bias); a rank holding only some input columns (row-parallel O / down) gets the
// zero-point correction of its own columns, and only the rank holding column 0 adds the float
// bias, so the all-reduce sums to the unsharded result.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "c8/backend/backend.h"
#include "c8/formats/modelslim_quant.h"
#include "c8/formats/safetensors.h"
#include "c8/model/weight_loader.h"

namespace c8 {

// A slice of checkpoint linear `prefix` (weight (out_full, in_full)): output channels
// [row_begin, +rows), input features [col_begin, +cols); -1 = all.
struct LinearPart {
  std::string prefix;
  int64_t out_full = 0, in_full = 0;
  int64_t row_begin = 0, rows = -1;
  int64_t col_begin = 0, cols = -1;
};

class LinearLoader {
 public:
  // store null: dummy weights; `dummy_quant` then says which scheme they use (seeded int8
  // weights and scales, identical element for element at every tensor-parallel size).
  LinearLoader(Backend& backend, WeightLoader& loader, const WeightStore* store,
               const ModelSlimQuant& quant, LinearQuant dummy_quant, uint64_t seed)
      : backend_(backend),
        loader_(loader),
        store_(store),
        quant_(quant),
        dummy_quant_(dummy_quant),
        seed_(seed) {}

  // The scheme of the fused parts (they must agree).
  Result<LinearQuant> TypeOf(const std::vector<LinearPart>& parts) const;
  // The rank's fused layer.
  Result<LinearWeight> Load(const std::vector<LinearPart>& parts);

 private:
  Result<LinearWeight> LoadQuantized(const std::vector<LinearPart>& parts, LinearQuant q);
  Result<LinearWeight> LoadDummyQuantized(const std::vector<LinearPart>& parts, LinearQuant q);
  Result<Tensor> Upload(const void* data, DType dtype, std::initializer_list<int64_t> shape);

  Backend& backend_;
  WeightLoader& loader_;
  const WeightStore* store_;
  const ModelSlimQuant& quant_;
  LinearQuant dummy_quant_;
  uint64_t seed_;
};

}  // namespace c8
