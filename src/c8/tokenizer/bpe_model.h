// The BPE model of a HF tokenizer.json ("model" field, type "BPE"): vocabulary, merges ranked by
// their order in the file (both the "a b" string form and the ["a", "b"] pair form), optional
// unk_token / fuse_unk / byte_fallback / continuing_subword_prefix / end_of_word_suffix /
// ignore_merges, as HF tokenizers applies them. Dropout is not supported (non-deterministic).
//
// Tokenize() is const and thread-safe; results for short words are cached in a sharded,
// mutex-protected cache.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "c8/util/status.h"

namespace c8 {

class BpeModel {
 public:
  // Builds the model from the "model" object `j`; `where` names it in errors
  // (e.g. "tokenizer.json: model").
  static Result<std::unique_ptr<BpeModel>> FromJson(const nlohmann::json& j,
                                                    const std::string& where);

  // Appends the ids of `word` (one pre-tokenized piece) to `out`.
  void Tokenize(std::string_view word, std::vector<int32_t>* out) const;

  // -1 when absent.
  int32_t TokenToId(std::string_view token) const;
  // nullptr when absent.
  const std::string* IdToToken(int32_t id) const;
  // One past the largest id of the vocabulary.
  int32_t id_limit() const { return static_cast<int32_t>(id_to_token_.size()); }

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void TokenizeUncached(std::string_view word, std::vector<int32_t>* out) const;

  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> vocab_;
  std::vector<std::optional<std::string>> id_to_token_;  // index: id
  std::unordered_map<uint64_t, Merge> merges_;           // key: PairKey(left id, right id)
  std::optional<std::string> unk_token_;
  std::optional<std::string> continuing_subword_prefix_;
  std::optional<std::string> end_of_word_suffix_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::array<int32_t, 256> byte_fallback_ids_{};  // ids of "<0xXX>" (-1 if absent)

  // Word cache: kShards independent maps, each capped at kShardCapacity entries.
  static constexpr int kShards = 16;
  static constexpr size_t kShardCapacity = 8192;
  static constexpr size_t kMaxCachedWordBytes = 256;
  struct CacheShard {
    mutable std::shared_mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
  };
  std::unique_ptr<CacheShard[]> cache_ = std::make_unique<CacheShard[]>(kShards);
};

}  // namespace c8
