// Safetensors reader: memory-mapped, single file or sharded (model.safetensors.index.json).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "c8/formats/mapped_file.h"
#include "c8/util/dtype.h"
#include "c8/util/status.h"

namespace c8 {

// A tensor inside a mapped file. `data` stays valid while the owning store lives.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::string file;  // path of the file that holds it (for error messages)

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  std::string ShapeString() const;
};

// One .safetensors file. Validates the header: length, JSON, dtypes, shapes, offsets
// (in range, matching dtype*numel, non-overlapping).
class SafetensorsFile {
 public:
  static Result<std::shared_ptr<SafetensorsFile>> Open(const std::string& path);
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::shared_ptr<MappedFile> file_;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Every tensor of a model directory: model.safetensors, or the shards listed in
// model.safetensors.index.json, or (ModelSlim) quant_model_weights*.safetensors, or every
// *.safetensors in the directory.
class WeightStore {
 public:
  static Result<WeightStore> Open(const std::string& model_dir);

  bool Has(const std::string& name) const { return tensors_.count(name) != 0; }
  // Error names the directory and the tensor.
  Result<const TensorView*> Get(const std::string& name) const;
  // Get + check the shape; errors name the tensor, expected and actual shapes.
  Result<const TensorView*> Get(const std::string& name, const std::vector<int64_t>& shape) const;
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, TensorView> tensors_;
};

// Converts any float tensor to float32 (appends to `out`).
Status TensorToF32(const TensorView& t, std::vector<float>& out);

std::string ShapeToString(const std::vector<int64_t>& shape);

}  // namespace c8
