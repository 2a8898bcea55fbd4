#include "c8/tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <vector>

namespace c8 {

namespace {

// One of the four Unicode normalization forms.
class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}
  std::string Normalize(std::string_view text) const override {
    if (text.empty()) return std::string();
    utf8proc_uint8_t* dst = nullptr;
    const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                            static_cast<utf8proc_ssize_t>(text.size()), &dst,
                                            static_cast<utf8proc_option_t>(options_));
    if (n < 0 || dst == nullptr) {  // only on invalid UTF-8 / out of memory: leave unchanged
      std::free(dst);
      return std::string(text);
    }
    std::string out(reinterpret_cast<const char*>(dst), static_cast<size_t>(n));
    std::free(dst);
    return out;
  }

 private:
  int options_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts)
      : parts_(std::move(parts)) {}
  std::string Normalize(std::string_view text) const override {
    std::string s(text);
    for (const auto& p : parts_) s = p->Normalize(s);
    return s;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

Result<std::unique_ptr<Normalizer>> ParseNormalizer(const nlohmann::json& j,
                                                    const std::string& where) {
  if (j.is_null()) return std::unique_ptr<Normalizer>();
  if (!j.is_object()) return Error(where + ": expected an object or null");
  auto it = j.find("type");
  if (it == j.end() || !it->is_string()) return Error(where + ".type: missing or not a string");
  const std::string type = it->get<std::string>();
  const int stable = UTF8PROC_STABLE;
  if (type == "NFC") {
    return std::unique_ptr<Normalizer>(new UnicodeNormalizer(stable | UTF8PROC_COMPOSE));
  }
  if (type == "NFD") {
    return std::unique_ptr<Normalizer>(new UnicodeNormalizer(stable | UTF8PROC_DECOMPOSE));
  }
  if (type == "NFKC") {
    return std::unique_ptr<Normalizer>(
        new UnicodeNormalizer(stable | UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
  }
  if (type == "NFKD") {
    return std::unique_ptr<Normalizer>(
        new UnicodeNormalizer(stable | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT));
  }
  if (type == "Sequence") {
    auto n = j.find("normalizers");
    if (n == j.end() || !n->is_array()) {
      return Error(where + ".normalizers: missing or not an array");
    }
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < n->size(); ++i) {
      C8_ASSIGN_OR_RETURN(
          auto part, ParseNormalizer((*n)[i], where + ".normalizers[" + std::to_string(i) + "]"));
      if (part) parts.push_back(std::move(part));
    }
    return std::unique_ptr<Normalizer>(new SequenceNormalizer(std::move(parts)));
  }
  return Error(where + ".type: unsupported normalizer type '" + type +
               "' (supported: NFC, NFD, NFKC, NFKD, Sequence, null)");
}

}  // namespace c8
