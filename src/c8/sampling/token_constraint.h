// A per-request constraint on which tokens may come next (structured output: a grammar
// matcher). The engine asks it for an allowed-token bitmask before each sampled token of the
// request and tells it which token was sampled. Implementations live outside the sampling
// module (c8/structured: xgrammar); the engine and the samplers only see this interface.
//
// Bitmask layout (shared with SamplingRows::allowed): words = ceil(vocab / 32) uint32 words;
// token t is allowed when bit (t % 32) of word (t / 32) is set.
#pragma once

#include <cstdint>
#include <string>

#include "c8/util/status.h"

namespace c8 {

inline int64_t AllowedMaskWords(int64_t vocab) {
  return (vocab + 31) / 32;
}

class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // Writes the mask of tokens allowed next into words[0, AllowedMaskWords(vocab)).
  virtual Status FillAllowed(uint32_t* words, int64_t vocab) = 0;
  // Advances past `token`; an error when the constraint does not allow it.
  virtual Status Accept(int32_t token) = 0;
  // The constraint is complete and accepted a stop token: the request ends here.
  virtual bool IsTerminated() const = 0;
};

}  // namespace c8
