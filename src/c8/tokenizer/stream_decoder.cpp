#include "c8/tokenizer/stream_decoder.h"

#include "c8/tokenizer/utf8.h"

namespace c8 {

std::string StreamDecoder::Push(int32_t id) {
  if (tokenizer_.AppendTokenBytes(id, skip_special_, first_, &pending_)) first_ = false;
  std::string out;
  const size_t used = AppendUtf8Lossy(pending_, /*final=*/false, &out);
  pending_.erase(0, used);
  return out;
}

std::string StreamDecoder::Flush() {
  std::string out;
  AppendUtf8Lossy(pending_, /*final=*/true, &out);
  pending_.clear();
  first_ = true;
  return out;
}

}  // namespace c8
