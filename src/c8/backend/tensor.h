// A non-owning view of backend (host or device) memory with a dtype and up to 4 dims.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>

#include "c8/util/dtype.h"

namespace c8 {

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::kF32;
  int ndim = 0;
  std::array<int64_t, 4> shape{};

  Tensor() = default;
  Tensor(void* d, DType t, std::initializer_list<int64_t> dims) : data(d), dtype(t) {
    for (int64_t x : dims) shape[ndim++] = x;
  }
  int64_t dim(int i) const { return shape[i < 0 ? ndim + i : i]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  size_t nbytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype); }
  template <class T>
  T* as() const {
    return static_cast<T*>(data);
  }
  // Rows [begin, begin+count) of a tensor whose first dim is rows.
  Tensor Rows(int64_t begin, int64_t count) const {
    Tensor t = *this;
    t.shape[0] = count;
    t.data = static_cast<char*>(data) + begin * (nbytes() / (shape[0] ? shape[0] : 1));
    return t;
  }
};

}  // namespace c8
