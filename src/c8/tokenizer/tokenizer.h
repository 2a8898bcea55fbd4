// A text tokenizer loaded from a Hugging Face `tokenizer.json`, producing the same ids as the HF
// `tokenizers` library for the supported components:
//   added_tokens (special or not, lstrip / rstrip / single_word / normalized flags),
//   normalizer: null, NFC, NFD, NFKC, NFKD, Sequence;
//   pre_tokenizer: null, ByteLevel, Digits, Split, Sequence;
//   model: BPE (byte-level or not; merges as "a b" strings or [a, b] pairs);
//   decoder: null, ByteLevel, Sequence of one ByteLevel;
//   post_processor: null or ByteLevel (which changes only offsets); truncation/padding: null.
// Anything else is rejected by FromFile with an error naming the file and the field.
//
// Encode pipeline (as HF): split the text on added tokens that are not `normalized`; normalize
// the other pieces; split them on `normalized` added tokens; pre-tokenize the remaining pieces;
// BPE each pre-token. No template tokens (BOS/EOS) are added: the chat template does that.
//
// Invalid UTF-8 input: Encode first replaces each maximal ill-formed subpart with U+FFFD, exactly
// like Python's bytes.decode("utf-8", errors="replace"); so Encode(bytes) equals HF's
// tokenizer.encode(bytes.decode("utf-8", "replace")). It never fails or crashes.
//
// A Tokenizer is immutable after loading, cheap to copy (shared state), and all methods are
// safe to call concurrently from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "c8/util/status.h"

namespace c8 {

class Tokenizer {
 public:
  // Loads `tokenizer_json_path`. Errors name the file and the JSON field at fault, e.g.
  // "models/x/tokenizer.json: model.vocab: missing or not an object of token -> id".
  static Result<Tokenizer> FromFile(const std::string& tokenizer_json_path);
  // Same from the JSON text; `name` stands for the file in error messages.
  static Result<Tokenizer> FromJsonString(std::string_view json_text, const std::string& name);

  // Token ids of `text`. With parse_special = false, special added tokens written in the text
  // are tokenized as plain text (HF `encode_special_tokens = true`); non-special added tokens
  // are still matched.
  std::vector<int32_t> Encode(std::string_view text, bool parse_special = true) const;

  // Text of `ids` as HF `decode(ids, skip_special_tokens=skip_special)`: ids out of the
  // vocabulary are skipped; invalid UTF-8 produced by byte-level tokens becomes U+FFFD.
  std::string Decode(std::span<const int32_t> ids, bool skip_special = false) const;

  // Id of the token string (added tokens first, then the model vocabulary); -1 if none.
  int32_t TokenToId(std::string_view token) const;
  // The token string of `id` (byte-level form, e.g. "Ġworld"); "" if `id` is unknown.
  std::string IdToToken(int32_t id) const;
  // One past the largest id (model vocabulary and added tokens).
  int32_t vocab_size() const;
  // Whether `id` is a special added token (skipped by Decode(..., skip_special = true)).
  bool IsSpecial(int32_t id) const;
  // The raw bytes token `id` contributes to decoded text (byte-level decoded, no joining
  // space; may be part of a UTF-8 sequence); "" for special and unknown ids. Used to give a
  // grammar engine the vocabulary.
  std::string TokenBytes(int32_t id) const;
  // Whether the decoder is byte-level (GPT-2 style): decoded text is the concatenation of the
  // tokens' bytes.
  bool byte_level() const;

 private:
  struct Impl;
  friend class StreamDecoder;
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  // Appends the decoder's output for one token (raw bytes for ByteLevel, which may end inside a
  // UTF-8 sequence) to `out`. `first`: no token was output before (the null decoder joins
  // tokens with spaces). Returns false when the token is skipped (unknown id, or special with
  // skip_special).
  bool AppendTokenBytes(int32_t id, bool skip_special, bool first, std::string* out) const;

  std::shared_ptr<const Impl> impl_;
};

}  // namespace c8
