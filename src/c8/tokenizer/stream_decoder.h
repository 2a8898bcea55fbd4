// Incremental detokenization for streaming generation output.
//
//   StreamDecoder dec(tokenizer);
//   for (int32_t id : generated) send(dec.Push(id));
//   send(dec.Flush());
//
// Push returns only text that is complete: bytes of a UTF-8 sequence split across tokens are
// held back until the sequence completes (or turns out invalid, then it becomes U+FFFD at once).
// The concatenation of all Push results and Flush equals tokenizer.Decode(all ids, skip_special).
// One StreamDecoder per sequence; not thread-safe itself (the Tokenizer it copies is shared).
#pragma once

#include <cstdint>
#include <string>

#include "c8/tokenizer/tokenizer.h"

namespace c8 {

class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false)
      : tokenizer_(tokenizer), skip_special_(skip_special) {}

  // Adds one token; returns the newly completed text (possibly empty).
  std::string Push(int32_t id);
  // Returns what is left (an incomplete trailing sequence becomes U+FFFD, as in Decode) and
  // resets the decoder for a new sequence.
  std::string Flush();
  // Number of bytes held back (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  Tokenizer tokenizer_;
  bool skip_special_;
  bool first_ = true;
  std::string pending_;  // bytes of an incomplete UTF-8 sequence
};

}  // namespace c8
