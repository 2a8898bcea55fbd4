#include "c8/model/linear_loader.h"

#include <cmath>
#include <cstring>

namespace c8 {

namespace {

struct Range {
  int64_t r0, nr, c0, nc;
};

Result<Range> Resolve(const LinearPart& p) {
  Range r{p.row_begin, p.rows < 0 ? p.out_full - p.row_begin : p.rows, p.col_begin,
          p.cols < 0 ? p.in_full - p.col_begin : p.cols};
  if (r.r0 < 0 || r.nr < 0 || r.r0 + r.nr > p.out_full || r.c0 < 0 || r.nc <= 0 ||
      r.c0 + r.nc > p.in_full) {
    return Error("linear " + p.prefix + ": slice outside its shape (" + std::to_string(p.out_full) +
                 ", " + std::to_string(p.in_full) + ")");
  }
  return r;
}

// A float tensor of `numel` values (any float dtype, any shape with that many elements).
Result<std::vector<float>> Floats(const WeightStore& ws, const std::string& name, int64_t numel) {
  C8_ASSIGN_OR_RETURN(const TensorView* t, ws.Get(name));
  if (t->numel() != numel) {
    return Error(t->file + ": tensor '" + name + "' has shape " + ShapeToString(t->shape) +
                 ", expected " + std::to_string(numel) + " values");
  }
  std::vector<float> v;
  C8_RETURN_IF_ERROR(TensorToF32(*t, v));
  return v;
}

Status CheckScales(const std::vector<float>& v, const std::string& name, const std::string& file) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i]) || v[i] == 0.0f) {
      return Error(file + ": tensor '" + name + "' value " + std::to_string(i) + " is " +
                   std::to_string(v[i]) + " (scales must be finite and non-zero)");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<LinearQuant> LinearLoader::TypeOf(const std::vector<LinearPart>& parts) const {
  if (store_ == nullptr) return dummy_quant_;
  LinearQuant first = LinearQuant::kNone;
  for (size_t i = 0; i < parts.size(); ++i) {
    C8_ASSIGN_OR_RETURN(LinearQuant q, quant_.LinearType(parts[i].prefix));
    if (i == 0) {
      first = q;
    } else if (q != first) {
      return Error(quant_.path + ": " + parts[0].prefix + " is " + LinearQuantName(first) +
                   " but " + parts[i].prefix + " is " + LinearQuantName(q) +
                   ": the parts of one fused layer must share a quant type");
    }
  }
  return first;
}

Result<Tensor> LinearLoader::Upload(const void* data, DType dtype,
                                    std::initializer_list<int64_t> shape) {
  C8_ASSIGN_OR_RETURN(Tensor t, backend_.UploadBytes(data, dtype, shape));
  loader_.Track(t);
  return t;
}

Result<LinearWeight> LinearLoader::Load(const std::vector<LinearPart>& parts) {
  C8_ASSIGN_OR_RETURN(LinearQuant q, TypeOf(parts));
  if (q != LinearQuant::kNone) {
    return store_ ? LoadQuantized(parts, q) : LoadDummyQuantized(parts, q);
  }
  std::vector<WeightSlice> slices;
  for (const LinearPart& p : parts) {
    WeightSlice s{p.prefix + ".weight", {p.out_full, p.in_full}};
    s.row_begin = p.row_begin;
    s.rows = p.rows;
    s.col_begin = p.col_begin;
    s.cols = p.cols;
    slices.push_back(std::move(s));
  }
  C8_ASSIGN_OR_RETURN(Tensor w, loader_.Load(slices));
  return LinearWeight(w);
}

Result<LinearWeight> LinearLoader::LoadQuantized(const std::vector<LinearPart>& parts,
                                                 LinearQuant q) {
  const bool dynamic = q == LinearQuant::kW8A8Dynamic;
  std::vector<Range> ranges;
  int64_t rows = 0;
  for (const LinearPart& p : parts) {
    C8_ASSIGN_OR_RETURN(Range r, Resolve(p));
    if (!ranges.empty() && r.nc != ranges[0].nc) {
      return Error("linear " + p.prefix + ": fused parts differ in input width");
    }
    ranges.push_back(r);
    rows += r.nr;
  }
  const int64_t cols = ranges[0].nc;
  std::vector<int8_t> w(static_cast<size_t>(rows * cols));
  std::vector<float> scale, shift;
  float s_ref = 1.0f, o_ref = 0.0f;
  int64_t out_row = 0;
  for (size_t k = 0; k < parts.size(); ++k) {
    const LinearPart& p = parts[k];
    const Range& r = ranges[k];
    const std::string wname = p.prefix + ".weight";
    C8_ASSIGN_OR_RETURN(const TensorView* wv, store_->Get(wname, {p.out_full, p.in_full}));
    if (wv->dtype != DType::kI8) {
      return Error(wv->file + ": tensor '" + wname + "' is " + std::string(DTypeName(wv->dtype)) +
                   " but " + LinearQuantName(q) + " weights must be I8 (int8)");
    }
    const auto* wq = reinterpret_cast<const int8_t*>(wv->data);
    for (int64_t i = 0; i < r.nr; ++i) {
      std::memcpy(w.data() + (out_row + i) * cols, wq + (r.r0 + i) * p.in_full + r.c0,
                  static_cast<size_t>(cols));
    }
    if (dynamic) {
      const std::string sname = p.prefix + ".weight_scale";
      C8_ASSIGN_OR_RETURN(std::vector<float> ws, Floats(*store_, sname, p.out_full));
      C8_RETURN_IF_ERROR(CheckScales(ws, sname, wv->file));
      const std::string oname = p.prefix + ".weight_offset";
      if (store_->Has(oname)) {
        C8_ASSIGN_OR_RETURN(std::vector<float> wo, Floats(*store_, oname, p.out_full));
        for (size_t i = 0; i < wo.size(); ++i) {
          if (wo[i] != 0.0f) {
            return Error(wv->file + ": tensor '" + oname + "' value " + std::to_string(i) +
                         " is non-zero (W8A8_DYNAMIC weights are symmetric)");
          }
        }
      }
      scale.insert(scale.end(), ws.begin() + r.r0, ws.begin() + r.r0 + r.nr);
    } else {
      const std::string is = p.prefix + ".input_scale", io = p.prefix + ".input_offset";
      const std::string ds = p.prefix + ".deq_scale", qb = p.prefix + ".quant_bias";
      C8_ASSIGN_OR_RETURN(std::vector<float> in_s, Floats(*store_, is, 1));
      C8_RETURN_IF_ERROR(CheckScales(in_s, is, wv->file));
      C8_ASSIGN_OR_RETURN(const TensorView* ov, store_->Get(io));
      std::vector<float> in_o;
      if (ov->numel() != 1) {
        return Error(ov->file + ": tensor '" + io + "' must hold one value");
      }
      if (ov->dtype == DType::kI8) {
        in_o.push_back(static_cast<float>(*reinterpret_cast<const int8_t*>(ov->data)));
      } else {
        C8_RETURN_IF_ERROR(TensorToF32(*ov, in_o));
      }
      if (!std::isfinite(in_o[0])) return Error(ov->file + ": tensor '" + io + "' is not finite");
      // deq_scale: float32, or int64 holding float32 bits (fp16 models).
      C8_ASSIGN_OR_RETURN(const TensorView* dv, store_->Get(ds));
      if (dv->numel() != p.out_full) {
        return Error(dv->file + ": tensor '" + ds + "' has shape " + ShapeToString(dv->shape) +
                     ", expected (" + std::to_string(p.out_full) + ")");
      }
      std::vector<float> deq;
      if (dv->dtype == DType::kI64) {
        deq.resize(static_cast<size_t>(p.out_full));
        for (int64_t i = 0; i < p.out_full; ++i) {
          int64_t bits;
          std::memcpy(&bits, dv->data + 8 * i, 8);
          const uint32_t lo = static_cast<uint32_t>(bits & 0xffffffff);
          std::memcpy(&deq[static_cast<size_t>(i)], &lo, 4);
        }
      } else {
        C8_RETURN_IF_ERROR(TensorToF32(*dv, deq));
      }
      C8_RETURN_IF_ERROR(CheckScales(deq, ds, dv->file));
      C8_ASSIGN_OR_RETURN(const TensorView* bv, store_->Get(qb, {p.out_full}));
      if (bv->dtype != DType::kI32) {
        return Error(bv->file + ": tensor '" + qb + "' is " + std::string(DTypeName(bv->dtype)) +
                     ", expected I32");
      }
      const auto* qbias = reinterpret_cast<const int32_t*>(bv->data);
      if (k == 0) {
        s_ref = in_s[0];
        o_ref = in_o[0];
      }
      const float s_p = in_s[0], o_p = in_o[0];
      const bool whole = r.c0 == 0 && r.nc == p.in_full;
      for (int64_t i = 0; i < r.nr; ++i) {
        const int64_t n = r.r0 + i;
        const double d = deq[static_cast<size_t>(n)];
        if (whole && s_p == s_ref && o_p == o_ref) {
          scale.push_back(static_cast<float>(d));
          shift.push_back(static_cast<float>(static_cast<double>(qbias[n]) * d));
          continue;
        }
        // The float bias the checkpoint folded in, then this rank's correction on the shared
        // activation quantization (s_ref, o_ref).
        const int8_t* row = wq + n * p.in_full;
        int64_t all = 0, mine = 0;
        for (int64_t c = 0; c < p.in_full; ++c) all += row[c];
        for (int64_t c = r.c0; c < r.c0 + r.nc; ++c) mine += row[c];
        const double bias_fp = (static_cast<double>(qbias[n]) + o_p * static_cast<double>(all)) * d;
        const double d2 = d * s_ref / s_p;
        scale.push_back(static_cast<float>(d2));
        shift.push_back(static_cast<float>((r.c0 == 0 ? bias_fp : 0.0) -
                                           o_ref * d2 * static_cast<double>(mine)));
      }
    }
    out_row += r.nr;
  }
  LinearWeight lw;
  lw.quant = q;
  C8_ASSIGN_OR_RETURN(lw.w, Upload(w.data(), DType::kI8, {rows, cols}));
  C8_ASSIGN_OR_RETURN(lw.scale, Upload(scale.data(), DType::kF32, {rows}));
  if (!dynamic) {
    C8_ASSIGN_OR_RETURN(lw.shift, Upload(shift.data(), DType::kF32, {rows}));
    lw.input_scale = s_ref;
    lw.input_offset = o_ref;
  }
  return lw;
}

Result<LinearWeight> LinearLoader::LoadDummyQuantized(const std::vector<LinearPart>& parts,
                                                      LinearQuant q) {
  // Seeded int8 weights (uniform in [-127, 127]) and per-channel scales for a weight std of
  // about 0.02, indexed by the unsharded tensor so that every -tp holds the same model; static
  // layers quantize activations with scale 0.05 and no offset.
  std::vector<Range> ranges;
  int64_t rows = 0;
  for (const LinearPart& p : parts) {
    C8_ASSIGN_OR_RETURN(Range r, Resolve(p));
    ranges.push_back(r);
    rows += r.nr;
  }
  const int64_t cols = ranges[0].nc;
  std::vector<int8_t> w(static_cast<size_t>(rows * cols));
  const std::string& name = parts[0].prefix + ".weight";
  int64_t offset = 0, out_row = 0;
  constexpr float kInputScale = 0.05f;
  const float ws = 0.02f * 1.7320508f / 127.0f;  // uniform int8 of std 0.02 after scaling
  std::vector<float> scale(static_cast<size_t>(rows),
                           q == LinearQuant::kW8A8Static ? ws * kInputScale : ws);
  std::vector<float> shift(static_cast<size_t>(rows), 0.0f);
  for (size_t k = 0; k < parts.size(); ++k) {
    const Range& r = ranges[k];
    ParallelRows(r.nr, cols, [&](int64_t b, int64_t e) {
      std::vector<float> u(static_cast<size_t>(cols));
      for (int64_t i = b; i < e; ++i) {
        FillDummyWeights(name, seed_, 0.0f, 127.0f / 1.7320508f, u.data(), cols,
                         (offset + r.r0 + i) * parts[k].in_full + r.c0);
        for (int64_t c = 0; c < cols; ++c) {
          w[static_cast<size_t>((out_row + i) * cols + c)] =
              static_cast<int8_t>(std::lround(std::fmax(-127.0f, std::fmin(127.0f, u[c]))));
        }
      }
    });
    offset += parts[k].out_full;
    out_row += r.nr;
  }
  LinearWeight lw;
  lw.quant = q;
  C8_ASSIGN_OR_RETURN(lw.w, Upload(w.data(), DType::kI8, {rows, cols}));
  C8_ASSIGN_OR_RETURN(lw.scale, Upload(scale.data(), DType::kF32, {rows}));
  if (q == LinearQuant::kW8A8Static) {
    C8_ASSIGN_OR_RETURN(lw.shift, Upload(shift.data(), DType::kF32, {rows}));
    lw.input_scale = kInputScale;
  }
  return lw;
}

}  // namespace c8
