#include "c8/model/weight_loader.h"

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "c8/util/bf16.h"

namespace c8 {

void FillDummyWeights(const std::string& name, uint64_t seed, float mean, float std_dev, float* out,
                      int64_t n, int64_t first_index) {
  uint64_t key = seed ^ 0x9e3779b97f4a7c15ull;
  for (char ch : name) key = (key ^ static_cast<uint8_t>(ch)) * 0x100000001b3ull;
  const float half_width = std_dev * 1.7320508f;  // uniform [-a, a] has std a / sqrt(3)
  for (int64_t i = 0; i < n; ++i) {
    uint64_t z =
        key + static_cast<uint64_t>(first_index + i) * 0x9e3779b97f4a7c15ull;  // splitmix64
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    out[i] = mean + (2.0f * u - 1.0f) * half_width;
  }
}

void ParallelRows(int64_t rows, int64_t cols, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t hw = std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int64_t chunks = rows * cols >= (int64_t{1} << 22) ? std::min(hw, rows) : 1;
  if (chunks <= 1) {
    fn(0, rows);
    return;
  }
  std::vector<std::thread> threads;
  const int64_t per = (rows + chunks - 1) / chunks;
  for (int64_t b = per; b < rows; b += per) {
    threads.emplace_back([&fn, b, e = std::min(rows, b + per)] { fn(b, e); });
  }
  fn(0, std::min(rows, per));
  for (std::thread& t : threads) t.join();
}

namespace {

struct Resolved {
  int64_t full_rows = 0, full_cols = 1;  // full tensor (cols 1 for 1-D)
  int64_t r0 = 0, nr = 0, c0 = 0, nc = 1;
};

Result<Resolved> Resolve(const WeightSlice& s) {
  if (s.shape.empty() || s.shape.size() > 2) {
    return Error("weight " + s.name + ": only 1-D and 2-D tensors can be sliced");
  }
  Resolved r;
  r.full_rows = s.shape[0];
  r.full_cols = s.shape.size() == 2 ? s.shape[1] : 1;
  r.r0 = s.row_begin;
  r.nr = s.rows < 0 ? r.full_rows - s.row_begin : s.rows;
  r.c0 = s.shape.size() == 2 ? s.col_begin : 0;
  r.nc = s.shape.size() == 2 ? (s.cols < 0 ? r.full_cols - s.col_begin : s.cols) : 1;
  if (r.r0 < 0 || r.nr < 0 || r.r0 + r.nr > r.full_rows || r.c0 < 0 || r.nc < 0 ||
      r.c0 + r.nc > r.full_cols) {
    return Error("weight " + s.name + ": slice outside its shape " + ShapeToString(s.shape));
  }
  return r;
}

}  // namespace

Result<Tensor> WeightLoader::Load(const std::vector<WeightSlice>& parts, int64_t pad_rows) {
  if (parts.empty()) return Error("weight loader: nothing to load");
  std::vector<Resolved> res;
  int64_t rows = pad_rows;
  for (const WeightSlice& p : parts) {
    C8_ASSIGN_OR_RETURN(Resolved r, Resolve(p));
    if (!res.empty() && r.nc != res[0].nc) {
      return Error("weight " + p.name + ": concatenated parts differ in width");
    }
    rows += r.nr;
    res.push_back(r);
  }
  const bool two_d = parts[0].shape.size() == 2;
  const int64_t cols = res[0].nc;
  const size_t n = static_cast<size_t>(rows * cols);
  Result<Tensor> uploaded = Error("unreachable");
  auto upload = [&](const void* data, DType dtype) {
    return two_d ? backend_.UploadWeight(data, dtype, {rows, cols})
                 : backend_.UploadWeight(data, dtype, {rows});
  };
  if (store_ == nullptr) {
    // Dummy: element (row, col) of part p is element (offset_p + row) * full_cols + col of the
    // concatenated full tensors named after the first part.
    std::vector<float> host(n, 0.0f);
    const std::string& name = parts[0].name;
    const bool norm = name.find("norm") != std::string::npos;
    const float mean = norm ? 1.0f : 0.0f, sd = norm ? 0.05f : 0.02f;  // initializer_range
    int64_t offset = 0, out_row = 0;
    for (const Resolved& r : res) {
      ParallelRows(r.nr, cols, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          float* row = host.data() + (out_row + i) * cols;
          FillDummyWeights(name, seed_, mean, sd, row, cols,
                           (offset + r.r0 + i) * r.full_cols + r.c0);
          for (int64_t c = 0; c < cols; ++c) {
            row[c] = Bf16ToF32(F32ToBf16(row[c]));  // bf16-exact: identical on every backend
          }
        }
      });
      offset += r.full_rows;
      out_row += r.nr;
    }
    uploaded = upload(host.data(), DType::kF32);
  } else {
    std::vector<const TensorView*> views;
    bool same = true;
    for (const WeightSlice& p : parts) {
      C8_ASSIGN_OR_RETURN(const TensorView* t, store_->Get(p.name, p.shape));
      views.push_back(t);
      same = same && t->dtype == views[0]->dtype;
    }
    const DType dt = views[0]->dtype;
    const bool raw = same && (dt == DType::kBF16 || dt == DType::kF32 || dt == DType::kF16);
    if (raw) {  // keep the bits as they are (exact; backends decide their storage)
      const size_t es = DTypeSize(dt);
      std::vector<uint8_t> buf(n * es, 0);
      int64_t out_row = 0;
      for (size_t k = 0; k < res.size(); ++k) {
        const Resolved& r = res[k];
        for (int64_t i = 0; i < r.nr; ++i) {
          std::memcpy(buf.data() + static_cast<size_t>((out_row + i) * cols) * es,
                      views[k]->data + static_cast<size_t>((r.r0 + i) * r.full_cols + r.c0) * es,
                      static_cast<size_t>(r.nc) * es);
        }
        out_row += r.nr;
      }
      uploaded = upload(buf.data(), dt);
    } else {
      std::vector<float> host(n, 0.0f), full;
      int64_t out_row = 0;
      for (size_t k = 0; k < res.size(); ++k) {
        const Resolved& r = res[k];
        full.clear();
        C8_RETURN_IF_ERROR(TensorToF32(*views[k], full));
        for (int64_t i = 0; i < r.nr; ++i) {
          std::memcpy(host.data() + (out_row + i) * cols,
                      full.data() + (r.r0 + i) * r.full_cols + r.c0, static_cast<size_t>(r.nc) * 4);
        }
        out_row += r.nr;
      }
      uploaded = upload(host.data(), DType::kF32);
    }
  }
  C8_ASSIGN_OR_RETURN(Tensor out, std::move(uploaded));
  allocations_.push_back(out.data);
  bytes_ += static_cast<int64_t>(out.nbytes());
  return out;
}

}  // namespace c8
