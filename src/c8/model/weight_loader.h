// Loads (slices of) checkpoint tensors onto a backend: what a tensor-parallel rank needs of
// each weight, concatenated (q|k|v, gate|up) and padded, or seeded random values for
// --load-format dummy that are identical, element for element, to the unsharded tensor's.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "c8/backend/backend.h"
#include "c8/formats/safetensors.h"

namespace c8 {

// Rows [row_begin, row_begin + rows) and, for 2-D tensors, columns [col_begin, col_begin + cols)
// of checkpoint tensor `name` whose full shape is `shape` (1-D or 2-D); -1 = all.
struct WeightSlice {
  std::string name;
  std::vector<int64_t> shape;
  int64_t row_begin = 0, rows = -1;
  int64_t col_begin = 0, cols = -1;
};

// Deterministic pseudo-random weights for --load-format dummy: uniform with std `std_dev`
// around `mean`, a function of (seed, name, first_index + i) only.
void FillDummyWeights(const std::string& name, uint64_t seed, float mean, float std_dev, float* out,
                      int64_t n, int64_t first_index = 0);
// Runs fn(begin, end) over chunks of [0, rows) on all hardware threads when the work
// (rows * cols elements) is large, inline otherwise (dummy weights of 32B-parameter shapes).
void ParallelRows(int64_t rows, int64_t cols, const std::function<void(int64_t, int64_t)>& fn);

class WeightLoader {
 public:
  // `store` null: dummy weights (norms near 1, matrices and biases small, bf16-exact values so
  // that every backend holds identical weights).
  WeightLoader(Backend& backend, const WeightStore* store, uint64_t seed)
      : backend_(backend), store_(store), seed_(seed) {}

  // The slices concatenated along dim 0, then `pad_rows` zero rows; one backend weight of
  // shape (sum rows + pad_rows, cols) (or (sum rows + pad_rows) for 1-D parts). Dummy values
  // index the concatenation of the parts' full tensors under the first part's name (as an
  // unsharded load of the concatenation would).
  Result<Tensor> Load(const std::vector<WeightSlice>& parts, int64_t pad_rows = 0);
  Result<Tensor> Load(const WeightSlice& part) { return Load(std::vector<WeightSlice>{part}); }

  // Counts a buffer uploaded elsewhere (quantized linears) among this loader's allocations.
  void Track(const Tensor& t) {
    allocations_.push_back(t.data);
    bytes_ += static_cast<int64_t>(t.nbytes());
  }
  // Every buffer uploaded so far (the caller frees them) and their bytes.
  std::vector<void*>& allocations() { return allocations_; }
  int64_t bytes() const { return bytes_; }

 private:
  Backend& backend_;
  const WeightStore* store_;
  uint64_t seed_;
  std::vector<void*> allocations_;
  int64_t bytes_ = 0;
};

}  // namespace c8
