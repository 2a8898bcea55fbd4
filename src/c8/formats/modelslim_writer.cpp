#include "c8/formats/modelslim_writer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <list>
#include <nlohmann/json.hpp>
#include <set>

#include "c8/formats/safetensors_writer.h"

namespace c8 {

namespace fs = std::filesystem;

std::vector<std::string> QuantizedLinearNames(int64_t layer) {
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  return {p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj",
          p + "self_attn.o_proj", p + "mlp.gate_proj",    p + "mlp.up_proj",
          p + "mlp.down_proj"};
}

namespace {

std::optional<SafetensorsDtype> FloatDtype(DType d) {
  switch (d) {
    case DType::kF32:
      return SafetensorsDtype::kF32;
    case DType::kF16:
      return SafetensorsDtype::kF16;
    case DType::kBF16:
      return SafetensorsDtype::kBF16;
    default:
      return std::nullopt;
  }
}

// One output tensor: its spec and how to produce its bytes.
struct Out {
  SafetensorsTensorSpec spec;
  std::string type;                            // description entry
  std::string linear;                          // quantized linear it belongs to ("" = copied as is)
  const TensorView* source = nullptr;          // copied tensor
  const std::vector<float>* values = nullptr;  // replaced FLOAT tensor (F32)
};

// The quantized tensors of one linear, computed once for all of its companions.
struct QuantLinear {
  std::vector<int8_t> w;
  std::vector<float> weight_scale, input_scale, input_offset, deq_f32, weight_offset;
  std::vector<int64_t> deq_i64;
  std::vector<int32_t> quant_bias;
};

const std::vector<float>* Find(const std::map<std::string, std::vector<float>>& m,
                               const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

Result<QuantLinear> Quantize(const WeightStore& src, const std::string& prefix, bool dynamic,
                             const ActivationRange* range, bool fp16_model,
                             const ModelSlimWriteOptions& o) {
  QuantLinear q;
  C8_ASSIGN_OR_RETURN(const TensorView* wv, src.Get(prefix + ".weight"));
  if (wv->shape.size() != 2) return Error(wv->file + ": " + prefix + ".weight is not 2-D");
  std::vector<float> w;
  C8_RETURN_IF_ERROR(TensorToF32(*wv, w));
  const int64_t N = wv->shape[0], K = wv->shape[1];
  const std::vector<float>* cs = Find(o.column_scale, prefix);
  const std::vector<float>* rs = Find(o.row_scale, prefix);
  if ((cs && static_cast<int64_t>(cs->size()) != K) ||
      (rs && static_cast<int64_t>(rs->size()) != N)) {
    return Error("quantize: smoothing scales of " + prefix + " do not match its shape");
  }
  if (cs || rs) {
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t k = 0; k < K; ++k) {
        w[n * K + k] *= (cs ? (*cs)[k] : 1.0f) * (rs ? (*rs)[n] : 1.0f);
      }
    }
  }
  q.w.resize(static_cast<size_t>(N * K));
  q.weight_scale.resize(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    float amax = 0.0f;
    for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(w[n * K + k]));
    const float s = amax > 0.0f ? amax / 127.0f : 1.0f;
    q.weight_scale[n] = s;
    for (int64_t k = 0; k < K; ++k) {
      const float v = std::nearbyint(w[n * K + k] / s);
      q.w[n * K + k] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
    }
  }
  if (dynamic) {
    q.weight_offset.assign(static_cast<size_t>(N), 0.0f);
    return q;
  }
  if (range == nullptr) return Error("quantize: no calibrated input range for " + prefix);
  const double lo = std::min(0.0f, range->lo), hi = std::max(0.0f, range->hi);
  const float s_x = hi > lo ? static_cast<float>((hi - lo) / 255.0) : 1.0f;
  const float o_x = static_cast<float>(-128.0 - std::nearbyint(lo / s_x));
  q.input_scale = {s_x};
  q.input_offset = {o_x};
  std::vector<float> bias;
  if (src.Has(prefix + ".bias")) {
    C8_ASSIGN_OR_RETURN(const TensorView* bv, src.Get(prefix + ".bias", {N}));
    C8_RETURN_IF_ERROR(TensorToF32(*bv, bias));
    if (rs) {
      for (int64_t n = 0; n < N; ++n) bias[n] *= (*rs)[n];
    }
  }
  q.deq_f32.resize(static_cast<size_t>(N));
  q.quant_bias.resize(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    const float deq = s_x * q.weight_scale[n];
    q.deq_f32[n] = deq;
    int64_t rowsum = 0;
    for (int64_t k = 0; k < K; ++k) rowsum += q.w[n * K + k];
    const double b = bias.empty() ? 0.0 : bias[n];
    const double qb = std::nearbyint(b / deq - static_cast<double>(o_x) * rowsum);
    if (!(std::fabs(qb) < 2147483647.0)) {
      return Error("quantize: " + prefix + ": quant_bias of channel " + std::to_string(n) +
                   " does not fit int32 (bias " + std::to_string(b) + ", deq_scale " +
                   std::to_string(deq) + ")");
    }
    q.quant_bias[n] = static_cast<int32_t>(qb);
  }
  if (fp16_model) {  // the float32 bits, widened to int64 (ModelSlim's deqscale2int64)
    q.deq_i64.resize(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) {
      uint32_t bits;
      std::memcpy(&bits, &q.deq_f32[n], 4);
      q.deq_i64[n] = static_cast<int64_t>(bits);
    }
  }
  return q;
}

}  // namespace

Status WriteModelSlimCheckpoint(const std::string& src_dir, const std::string& out_dir,
                                const ModelConfig& config, const WeightStore& src,
                                const ModelSlimWriteOptions& o) {
  if (o.scheme != "W8A8" && o.scheme != "W8A8_DYNAMIC" && o.scheme != "W8A8_MIX") {
    return Error("quantize: unknown scheme '" + o.scheme + "' (W8A8, W8A8_DYNAMIC, W8A8_MIX)");
  }
  // The type of one linear.
  auto type_of = [&](const std::string& prefix) -> std::string {
    if (o.scheme != "W8A8_MIX") return o.scheme;
    return prefix.find(".mlp.") != std::string::npos ? "W8A8_DYNAMIC" : "W8A8";
  };
  std::error_code ec;
  const fs::path out(out_dir);
  if (!o.overwrite && fs::exists(out) && !fs::is_empty(out, ec)) {
    return Error(out_dir + ": output directory exists and is not empty");
  }
  if (fs::equivalent(fs::path(src_dir), out, ec)) {
    return Error(out_dir + ": must differ from the source directory");
  }
  fs::create_directories(out, ec);
  if (ec) return Error(out_dir + ": cannot create: " + ec.message());
  const bool fp16_model = config.torch_dtype == "float16";

  // The plan: every source tensor (linears' weights replaced by their quantized set), then the
  // C8 tensors.
  std::set<std::string> linears;
  for (int64_t l = 0; l < config.num_layers; ++l) {
    for (const std::string& n : QuantizedLinearNames(l)) linears.insert(n);
  }
  std::vector<Out> plan;
  std::list<std::vector<float>> overridden_;  // smoothed biases (stable addresses)
  for (const auto& [name, tv] : src.tensors()) {
    const std::string prefix = name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0
                                   ? name.substr(0, name.size() - 7)
                                   : "";
    if (!prefix.empty() && linears.count(prefix)) {
      if (tv.shape.size() != 2) return Error(tv.file + ": " + name + " is not 2-D");
      if (!FloatDtype(tv.dtype)) {
        return Error(tv.file + ": tensor '" + name + "' is " + std::string(DTypeName(tv.dtype)) +
                     ": the source of `c8 quantize` must be a 16-bit (or fp32) model");
      }
      const int64_t N = tv.shape[0], K = tv.shape[1];
      const std::string type = type_of(prefix);
      const bool dynamic = type == "W8A8_DYNAMIC";
      plan.push_back({{name, SafetensorsDtype::kI8, {N, K}}, type, prefix, nullptr});
      if (dynamic) {
        plan.push_back(
            {{prefix + ".weight_scale", SafetensorsDtype::kF32, {N, 1}}, type, prefix, nullptr});
        plan.push_back(
            {{prefix + ".weight_offset", SafetensorsDtype::kF32, {N, 1}}, type, prefix, nullptr});
      } else {
        plan.push_back(
            {{prefix + ".input_scale", SafetensorsDtype::kF32, {1}}, type, prefix, nullptr});
        plan.push_back(
            {{prefix + ".input_offset", SafetensorsDtype::kF32, {1}}, type, prefix, nullptr});
        plan.push_back({{prefix + ".deq_scale",
                         fp16_model ? SafetensorsDtype::kI64 : SafetensorsDtype::kF32,
                         {N}},
                        type,
                        prefix,
                        nullptr});
        plan.push_back(
            {{prefix + ".quant_bias", SafetensorsDtype::kI32, {N}}, type, prefix, nullptr});
      }
      continue;
    }
    if (name.find("kv_cache_scale") != std::string::npos ||
        name.find("kv_cache_offset") != std::string::npos) {
      continue;  // replaced by the new C8 tensors (or dropped)
    }
    // A smoothed bias (row_scale of its linear) or an overridden tensor is written as F32.
    if (const std::vector<float>* rs =
            name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0
                ? Find(o.row_scale, name.substr(0, name.size() - 5))
                : nullptr) {
      std::vector<float> b;
      C8_RETURN_IF_ERROR(TensorToF32(tv, b));
      if (b.size() != rs->size()) return Error("quantize: smoothing scales of " + name);
      for (size_t i = 0; i < b.size(); ++i) b[i] *= (*rs)[i];
      overridden_.push_back(std::move(b));
      plan.push_back({{name, SafetensorsDtype::kF32, tv.shape}, "FLOAT", "", nullptr});
      plan.back().values = &overridden_.back();
      continue;
    }
    if (const std::vector<float>* ov = Find(o.overrides, name)) {
      if (static_cast<int64_t>(ov->size()) != tv.numel()) {
        return Error("quantize: replacement of " + name + " has the wrong size");
      }
      plan.push_back({{name, SafetensorsDtype::kF32, tv.shape}, "FLOAT", "", nullptr});
      plan.back().values = ov;
      continue;
    }
    auto dt = FloatDtype(tv.dtype);
    if (!dt) {
      return Error(tv.file + ": tensor '" + name + "' is " + std::string(DTypeName(tv.dtype)) +
                   ": the source of `c8 quantize` must be a 16-bit (or fp32) model");
    }
    plan.push_back({{name, *dt, tv.shape}, "FLOAT", "", &tv});
  }
  for (size_t l = 0; l < o.kv_scales.size(); ++l) {
    for (char kv : {'k', 'v'}) {
      for (const char* what : {"scale", "offset"}) {
        const int64_t n = static_cast<int64_t>(o.kv_scales[l].k_scale.size());
        plan.push_back(
            {{C8TensorName(static_cast<int64_t>(l), kv, what), SafetensorsDtype::kF32, {n}},
             "C8",
             "",
             nullptr});
      }
    }
  }

  std::vector<SafetensorsTensorSpec> specs;
  for (const Out& p : plan) specs.push_back(p.spec);
  std::map<std::string, std::string> md = o.metadata;
  md["quantized_by"] = "c8 quantize";
  C8_ASSIGN_OR_RETURN(
      SafetensorsWriter w,
      SafetensorsWriter::Create((out / "quant_model_weights.safetensors").string(), specs, md));
  std::string current;
  QuantLinear q;
  for (const Out& p : plan) {
    const std::string& name = p.spec.name;
    if (p.source != nullptr) {
      C8_RETURN_IF_ERROR(w.WriteTensor(name, p.source->data, p.source->nbytes));
      continue;
    }
    if (p.values != nullptr) {
      C8_RETURN_IF_ERROR(w.WriteTensor(name, p.values->data(), p.values->size() * 4));
      continue;
    }
    if (p.type == "C8") {
      const size_t layer = std::stoul(name.substr(13, name.find('.', 13) - 13));
      const C8LayerScales& s = o.kv_scales[layer];
      const bool k = name.find(".k_proj.") != std::string::npos;
      const bool scale = name.find("kv_cache_scale") != std::string::npos;
      const std::vector<float>& v =
          k ? (scale ? s.k_scale : s.k_offset) : (scale ? s.v_scale : s.v_offset);
      C8_RETURN_IF_ERROR(w.WriteTensor(name, v.data(), v.size() * 4));
      continue;
    }
    if (p.linear != current) {
      auto it = o.ranges.find(p.linear);
      C8_ASSIGN_OR_RETURN(q, Quantize(src, p.linear, type_of(p.linear) == "W8A8_DYNAMIC",
                                      it == o.ranges.end() ? nullptr : &it->second, fp16_model, o));
      current = p.linear;
    }
    const std::string suffix = name.substr(p.linear.size() + 1);
    auto write = [&](const auto& v) {
      return w.WriteTensor(name, v.data(), v.size() * sizeof(v[0]));
    };
    if (suffix == "weight") {
      C8_RETURN_IF_ERROR(write(q.w));
    } else if (suffix == "weight_scale") {
      C8_RETURN_IF_ERROR(write(q.weight_scale));
    } else if (suffix == "weight_offset") {
      C8_RETURN_IF_ERROR(write(q.weight_offset));
    } else if (suffix == "input_scale") {
      C8_RETURN_IF_ERROR(write(q.input_scale));
    } else if (suffix == "input_offset") {
      C8_RETURN_IF_ERROR(write(q.input_offset));
    } else if (suffix == "deq_scale") {
      C8_RETURN_IF_ERROR(fp16_model ? write(q.deq_i64) : write(q.deq_f32));
    } else {
      C8_RETURN_IF_ERROR(write(q.quant_bias));
    }
  }
  C8_RETURN_IF_ERROR(w.Finish());

  // Description (every tensor with its layer's type), then the other files of the source.
  nlohmann::ordered_json desc;
  desc["model_quant_type"] = o.scheme == "W8A8_MIX" ? "W8A8_DYNAMIC" : o.scheme;
  desc["version"] = "1.0.0";
  if (!o.kv_scales.empty()) desc["kv_cache_type"] = "C8";
  for (const Out& p : plan) desc[p.spec.name] = p.type;
  {
    std::ofstream f(out / "quant_model_description.json");
    f << desc.dump(2) << "\n";
    if (!f) return Error((out / "quant_model_description.json").string() + ": cannot write");
  }
  for (const auto& e : fs::directory_iterator(fs::path(src_dir), ec)) {
    const std::string fname = e.path().filename().string();
    if (!e.is_regular_file() || fname == "quant_model_description.json") continue;
    if (fname.size() > 12 && (fname.ends_with(".safetensors") || fname.ends_with(".index.json"))) {
      continue;
    }
    fs::copy_file(e.path(), out / fname, fs::copy_options::overwrite_existing, ec);
    if (ec) return Error((out / fname).string() + ": cannot copy: " + ec.message());
  }
  return Status::Ok();
}

}  // namespace c8
