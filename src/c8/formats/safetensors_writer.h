// Streaming .safetensors writer.
//
// File layout: u64 (LE) header length N | N bytes of JSON header, padded with spaces to a
// multiple of 8 | tensor bytes. The header maps each tensor name to
// {"dtype": "BF16"|"F16"|"F32", "shape": [...], "data_offsets": [begin, end]} (offsets
// relative to the start of the data) plus "__metadata__": {"format": "pt", ...}.
//
// All tensors are declared up front (the header needs every offset), then their bytes are
// streamed in declaration order, in as many Append calls as convenient, so a model never has
// to be held in memory. The file is written to "<path>.tmp" and renamed to <path> by Finish();
// if the writer is destroyed before Finish() succeeds, the temporary file is removed.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "c8/util/status.h"

namespace c8 {

enum class SafetensorsDtype { kF32, kF16, kBF16, kI8, kI32, kI64 };

// "F32", "F16", "BF16", "I8", "I32", "I64"
const char* SafetensorsDtypeName(SafetensorsDtype dtype);
int64_t SafetensorsDtypeSize(SafetensorsDtype dtype);

struct SafetensorsTensorSpec {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::kBF16;
  std::vector<int64_t> shape;  // row-major (PyTorch order)

  int64_t NumBytes() const;
};

class SafetensorsWriter {
 public:
  // Validates the specs (unique non-empty names, non-negative dims), opens <path>.tmp and
  // writes the header. `metadata` entries are added to "__metadata__" next to "format": "pt".
  static Result<SafetensorsWriter> Create(const std::string& path,
                                          std::vector<SafetensorsTensorSpec> tensors,
                                          const std::map<std::string, std::string>& metadata = {});

  SafetensorsWriter(SafetensorsWriter&& other) noexcept;
  SafetensorsWriter& operator=(SafetensorsWriter&& other) noexcept;
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;
  ~SafetensorsWriter();

  // Name of the tensor whose bytes are expected next ("" when all are complete).
  const std::string& current_tensor() const;
  // Appends bytes of the current tensor; may complete it and move on to the next one, but
  // never spans two tensors (error if `nbytes` exceeds what the current tensor still needs).
  Status Append(const void* data, size_t nbytes);
  // Convenience: appends the whole tensor `name`, which must be the current tensor and
  // have no bytes written yet.
  Status WriteTensor(const std::string& name, const void* data, size_t nbytes);
  // Checks that every tensor is complete, flushes, closes and renames <path>.tmp to <path>.
  Status Finish();

  const std::string& path() const { return path_; }
  // Size of header + padding + 8, i.e. where tensor data begins in the file.
  uint64_t data_start() const { return data_start_; }

 private:
  SafetensorsWriter() = default;
  void Abandon();

  std::string path_;
  std::string tmp_path_;
  std::FILE* fp_ = nullptr;
  std::vector<SafetensorsTensorSpec> specs_;
  size_t current_ = 0;    // index of the tensor being written
  uint64_t written_ = 0;  // bytes of the current tensor already written
  uint64_t data_start_ = 0;
  bool finished_ = false;
};

}  // namespace c8
