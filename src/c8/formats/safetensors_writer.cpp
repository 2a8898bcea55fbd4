// Streaming .safetensors writer: see safetensors_writer.h.
#include "c8/formats/safetensors_writer.h"

#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

namespace c8 {

const char* SafetensorsDtypeName(SafetensorsDtype dtype) {
  switch (dtype) {
    case SafetensorsDtype::kF32:
      return "F32";
    case SafetensorsDtype::kF16:
      return "F16";
    case SafetensorsDtype::kBF16:
      return "BF16";
    case SafetensorsDtype::kI8:
      return "I8";
    case SafetensorsDtype::kI32:
      return "I32";
    case SafetensorsDtype::kI64:
      return "I64";
  }
  return "?";
}

int64_t SafetensorsDtypeSize(SafetensorsDtype dtype) {
  switch (dtype) {
    case SafetensorsDtype::kI8:
      return 1;
    case SafetensorsDtype::kF16:
    case SafetensorsDtype::kBF16:
      return 2;
    case SafetensorsDtype::kF32:
    case SafetensorsDtype::kI32:
      return 4;
    case SafetensorsDtype::kI64:
      return 8;
  }
  return 0;
}

int64_t SafetensorsTensorSpec::NumBytes() const {
  int64_t n = SafetensorsDtypeSize(dtype);
  for (int64_t d : shape) n *= d;
  return n;
}

Result<SafetensorsWriter> SafetensorsWriter::Create(
    const std::string& path, std::vector<SafetensorsTensorSpec> tensors,
    const std::map<std::string, std::string>& metadata) {
  // Header: __metadata__ first, then the tensors in the order their bytes are written.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  nlohmann::ordered_json meta = nlohmann::ordered_json::object();
  meta["format"] = "pt";
  for (const auto& [k, v] : metadata) meta[k] = v;
  header["__metadata__"] = std::move(meta);

  std::set<std::string> names;
  uint64_t offset = 0;
  for (const SafetensorsTensorSpec& t : tensors) {
    const std::string what = path + ": tensor '" + t.name + "'";
    if (t.name.empty() || t.name == "__metadata__") {
      return Error(path + ": invalid tensor name '" + t.name + "'");
    }
    if (!names.insert(t.name).second) return Error(what + ": duplicate tensor name");
    uint64_t n = static_cast<uint64_t>(SafetensorsDtypeSize(t.dtype));
    for (int64_t d : t.shape) {
      if (d < 0) return Error(what + ": negative dimension " + std::to_string(d));
      if (d != 0 && n > (uint64_t{1} << 62) / static_cast<uint64_t>(d)) {
        return Error(what + ": byte size overflows");
      }
      n *= static_cast<uint64_t>(d);
    }
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = SafetensorsDtypeName(t.dtype);
    entry["shape"] = t.shape;
    entry["data_offsets"] = {offset, offset + n};
    header[t.name] = std::move(entry);
    offset += n;
  }

  std::string text;
  try {
    text = header.dump();
  } catch (const std::exception& e) {
    return Error(path + ": cannot encode the header (tensor names must be UTF-8): " + e.what());
  }
  // Pad with spaces so that the data starts 8-byte aligned.
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');

  SafetensorsWriter w;
  w.path_ = path;
  w.tmp_path_ = path + ".tmp";
  w.specs_ = std::move(tensors);
  w.data_start_ = 8 + text.size();
  w.fp_ = std::fopen(w.tmp_path_.c_str(), "wb");
  if (!w.fp_) return Error(w.tmp_path_ + ": cannot create: " + std::strerror(errno));
  std::setvbuf(w.fp_, nullptr, _IOFBF, 1 << 20);
  uint8_t len_le[8];
  uint64_t len = text.size();
  for (int k = 0; k < 8; ++k) len_le[k] = static_cast<uint8_t>(len >> (8 * k));
  if (std::fwrite(len_le, 1, 8, w.fp_) != 8 ||
      std::fwrite(text.data(), 1, text.size(), w.fp_) != text.size()) {
    return Error(w.tmp_path_ + ": write failed: " + std::strerror(errno));
  }
  // Skip over zero-sized tensors at the front.
  while (w.current_ < w.specs_.size() && w.specs_[w.current_].NumBytes() == 0) ++w.current_;
  return w;
}

SafetensorsWriter::SafetensorsWriter(SafetensorsWriter&& o) noexcept {
  *this = std::move(o);
}

SafetensorsWriter& SafetensorsWriter::operator=(SafetensorsWriter&& o) noexcept {
  if (this != &o) {
    Abandon();
    path_ = std::move(o.path_);
    tmp_path_ = std::move(o.tmp_path_);
    fp_ = std::exchange(o.fp_, nullptr);
    specs_ = std::move(o.specs_);
    current_ = o.current_;
    written_ = o.written_;
    data_start_ = o.data_start_;
    finished_ = std::exchange(o.finished_, true);
  }
  return *this;
}

SafetensorsWriter::~SafetensorsWriter() {
  Abandon();
}

void SafetensorsWriter::Abandon() {
  if (fp_) {
    std::fclose(fp_);
    fp_ = nullptr;
    if (!finished_) std::remove(tmp_path_.c_str());
  }
}

const std::string& SafetensorsWriter::current_tensor() const {
  static const std::string none;
  return current_ < specs_.size() ? specs_[current_].name : none;
}

Status SafetensorsWriter::Append(const void* data, size_t nbytes) {
  if (!fp_) return Error(path_ + ": writer is closed");
  if (nbytes == 0) return Status::Ok();
  if (current_ >= specs_.size()) {
    return Error(path_ + ": " + std::to_string(nbytes) + " bytes appended after the last tensor");
  }
  const SafetensorsTensorSpec& t = specs_[current_];
  const uint64_t need = static_cast<uint64_t>(t.NumBytes()) - written_;
  if (nbytes > need) {
    return Error(path_ + ": tensor '" + t.name + "': " + std::to_string(nbytes) +
                 " bytes appended but only " + std::to_string(need) + " remain");
  }
  if (std::fwrite(data, 1, nbytes, fp_) != nbytes) {
    return Error(tmp_path_ + ": write failed for tensor '" + t.name + "': " + std::strerror(errno));
  }
  written_ += nbytes;
  if (written_ == static_cast<uint64_t>(t.NumBytes())) {
    written_ = 0;
    ++current_;
    while (current_ < specs_.size() && specs_[current_].NumBytes() == 0) ++current_;
  }
  return Status::Ok();
}

Status SafetensorsWriter::WriteTensor(const std::string& name, const void* data, size_t nbytes) {
  if (current_ >= specs_.size() || specs_[current_].name != name || written_ != 0) {
    return Error(path_ + ": tensor '" + name + "' written out of order (expected '" +
                 current_tensor() + "')");
  }
  if (nbytes != static_cast<uint64_t>(specs_[current_].NumBytes())) {
    return Error(path_ + ": tensor '" + name + "': got " + std::to_string(nbytes) +
                 " bytes, its shape needs " + std::to_string(specs_[current_].NumBytes()));
  }
  return Append(data, nbytes);
}

Status SafetensorsWriter::Finish() {
  if (!fp_) return Error(path_ + ": writer is closed");
  if (current_ < specs_.size()) {
    return Error(path_ + ": tensor '" + specs_[current_].name + "' is incomplete (" +
                 std::to_string(written_) + " of " + std::to_string(specs_[current_].NumBytes()) +
                 " bytes written)");
  }
  const bool flush_ok = std::fflush(fp_) == 0;
  const int flush_errno = errno;
  const bool close_ok = std::fclose(fp_) == 0;
  fp_ = nullptr;
  if (!flush_ok || !close_ok) {
    std::remove(tmp_path_.c_str());
    return Error(tmp_path_ + ": write failed: " + std::strerror(flush_ok ? errno : flush_errno));
  }
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp_path_.c_str());
    return Error(path_ + ": cannot rename from " + tmp_path_ + ": " + std::strerror(e));
  }
  finished_ = true;
  return Status::Ok();
}

}  // namespace c8
