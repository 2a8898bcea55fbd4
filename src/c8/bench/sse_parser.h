// Incremental parser of a Server-Sent Events stream (text/event-stream), fed raw bytes as they
// arrive from the socket, split at arbitrary boundaries.
//
// Events are separated by a blank line ("\n\n", "\r\n\r\n" or "\r\r"); within an event, lines
// "data: X" (or "data:X") contribute X, several data lines being joined with "\n"; comment
// lines (":" ping) and other fields (event:, id:, retry:) are ignored. Like vLLM's
// StreamedResponseHandler, a pending "data: ..." whose payload is already "[DONE]" or a complete
// JSON value is emitted without waiting for the blank line.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace c8::bench {

class SseParser {
 public:
  // Appends `bytes` and returns the data payloads of the events now complete, in order.
  std::vector<std::string> Feed(std::string_view bytes);
  // End of stream: returns the payload of a last event that lacked its blank line (if any).
  std::vector<std::string> Finish();

 private:
  // Parses one event block (without its terminator); appends its data if it has any.
  static void EmitBlock(std::string_view block, std::vector<std::string>* out);
  std::string buffer_;
};

}  // namespace c8::bench
