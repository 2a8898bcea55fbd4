// Tool-call output parsing for the Hermes format (used by the Qwen2.5 / Qwen3 chat templates),
// following vLLM's `hermes` tool parser. The model writes optional plain text followed by one
// or more calls, each a JSON object wrapped in tags:
//
//   Some optional text<tool_call>
//   {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}
//   </tool_call>
//   <tool_call>
//   {"name": "f2", "arguments": {}}
//   </tool_call>
//
// Two entry points:
// - ParseHermesToolCalls: the whole generated text at once (non-streaming responses). Exactly
//   vLLM's extract_tool_calls: content = the text before the first <tool_call>; every
//   <tool_call> block (the last one may lack its </tool_call>) must parse as a JSON object
//   with a string "name", otherwise the whole text falls back to plain content with no calls.
// - HermesToolStreamParser: fed the newly decoded text of each step (streaming responses);
//   returns the content text and the tool-call deltas to send in that chunk. It streams the
//   arguments' raw JSON text as the model writes it, holding back only what could still be a
//   tag, so concatenating the fragments gives the model's text of the arguments value (valid
//   JSON equal to the non-streaming result, but possibly spaced differently: the
//   non-streaming form is re-serialized compactly with dump()).
// Neither throws on malformed model output.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace c8 {

// Returns a fresh tool call id: "chatcmpl-tool-" + 32 lowercase hex chars.
using ToolCallIdFn = std::function<std::string()>;

// One complete tool call of a non-streaming response.
struct ToolCall {
  std::string id;         // from the id generator
  std::string name;       // the function name
  std::string arguments;  // JSON text of the arguments value, compact (nlohmann dump())
};

struct ParsedToolCalls {
  // False when calls were found and the text before the first <tool_call> is empty or only
  // whitespace (the response's "content" is then null). Always true when there are no calls
  // (content is then the whole text, as in vLLM).
  bool has_content = false;
  std::string content;
  std::vector<ToolCall> calls;  // in order of appearance; empty: no tool calls
};

// Non-streaming: parses the whole generated text. Rules (vLLM hermes):
// - no "<tool_call>" in the text: no calls, content = text;
// - each "<tool_call>" starts a block ending at the next "</tool_call>" (or at the end of the
//   text for an unterminated last block); its body, surrounding whitespace allowed, must be a
//   JSON object with a string "name", otherwise: no calls, content = the whole text;
// - arguments = dump() of the first "arguments" (or alias "parameters") member, key order kept
//   and non-ASCII kept as UTF-8; "{}" when neither is present;
// - content = the text before the first "<tool_call>"; text between and after blocks is
//   ignored. new_id is called once per call, only when the parse succeeds.
ParsedToolCalls ParseHermesToolCalls(const std::string& text, const ToolCallIdFn& new_id);

// One tool-call entry of a streamed chunk ("delta.tool_calls[i]").
struct ToolCallDelta {
  int index = 0;          // position of the call in the response's tool_calls (0, 1, ...)
  std::string id;         // set on the first delta of a call only (the header)
  std::string name;       // set on the first delta of a call only (the header)
  std::string arguments;  // fragment of the arguments JSON text; empty on the header
};

// What to send for one step of a stream.
struct StreamDelta {
  std::string content;                    // plain text to stream as "content" (may be empty)
  std::vector<ToolCallDelta> tool_calls;  // in order; a call's header precedes its fragments

  bool empty() const { return content.empty() && tool_calls.empty(); }
};

// Streaming counterpart of ParseHermesToolCalls. Feed it each newly decoded piece of text (whole
// UTF-8 characters), then Finish() once when generation ends. Behaviour:
// - Text outside calls is streamed as content, except: a suffix that could be the start of
//   "<tool_call>" (e.g. "<", "<tool") is held back until disambiguated (then released as
//   content if it is not the tag); a run of text outside calls (before the first call, between
//   calls, after the last) that is only whitespace is dropped (its leading whitespace is held
//   until a non-space character shows it is real text). With no calls at all, Finish()
//   releases held whitespace, so the content is then exactly the text. Text after a call is
//   streamed as content (vLLM is loose here; the non-streaming parser ignores it).
// - Inside a call, the wrapper object is scanned character by character (JSON nesting depth,
//   string and escape state). As soon as the "name" string is complete a header delta {index,
//   id, name, arguments ""} is emitted; the raw text of the "arguments" (or "parameters")
//   value is then streamed as it arrives (value only: no wrapper "}", no whitespace before
//   </tool_call>). Keys may come in any order: arguments written before the name are held
//   until the header is out. If the call ends ("</tool_call>" or Finish) without arguments,
//   a fragment "{}" is emitted. Other members are skipped; a repeated "name"/"arguments" is
//   ignored (first wins).
// - A call ends at the first "</tool_call>" even inside a JSON string (as in the
//   non-streaming regex); a suffix that could begin "</tool_call>" is held back meanwhile.
// - Malformed bodies never throw: scanning stops at the first unexpected character; whatever
//   was already emitted stays (a call with no complete name emits nothing and takes no index;
//   truncated arguments stay truncated). Unlike the non-streaming parser there is no fallback
//   to plain content, as the text has already been sent.
// - One StreamDelta does not keep the relative order of content and calls: a piece holding
//   "text<tool_call>...</tool_call>more" yields content "textmore" plus the call's deltas.
// - Several calls may complete in one Feed; each gets a header delta followed by (at most)
//   one fragment delta per Feed.
class HermesToolStreamParser {
 public:
  explicit HermesToolStreamParser(ToolCallIdFn new_id);

  // Next piece of generated text; returns what to send now.
  StreamDelta Feed(const std::string& text);
  // Generation ended: flushes anything held back (an unterminated last call is completed).
  StreamDelta Finish();
  // True once a call header was emitted (finish_reason then becomes "tool_calls").
  bool saw_tool_call() const { return num_calls_ > 0; }

 private:
  // Scanner position inside the wrapper object {"name": ..., "arguments": ...}.
  enum class Wrap {
    kStart,
    kKeyOrEnd,
    kKey,
    kColon,
    kValueStart,
    kValue,
    kAfterValue,
    kDone,
    kError
  };
  // What the current member's value is used for.
  enum class Role { kSkip, kName, kArgs };

  void Process(StreamDelta& out, bool final);
  void EmitText(const std::string& piece, StreamDelta& out);
  void StartCall();
  void EndCall(StreamDelta& out);
  void ScanBody(const std::string& body, StreamDelta& out);
  void ScanChar(char c, StreamDelta& out);
  void EndValue(StreamDelta& out);
  void FlushArgs(StreamDelta& out);
  void AddArgs(const std::string& fragment, StreamDelta& out);

  ToolCallIdFn new_id_;
  std::string pending_;  // received text not yet processed (a possible tag prefix)
  bool in_call_ = false;
  bool any_call_tag_ = false;  // a "<tool_call>" tag was seen
  int num_calls_ = 0;          // headers emitted so far (the next call's index)

  // Current run of text outside calls.
  bool segment_has_text_ = false;  // a non-space character was seen (and streamed)
  std::string held_ws_;            // leading whitespace of the run, not yet streamed

  // Current call.
  Wrap wrap_ = Wrap::kStart;
  Role role_ = Role::kSkip;
  std::string key_raw_;     // the member key being read, with its quotes
  std::string name_raw_;    // the "name" value being read, with its quotes
  bool escape_ = false;     // the previous character was a backslash inside a string
  bool in_string_ = false;  // inside a string of the current value
  int depth_ = 0;           // {/[ nesting of the current value
  bool literal_ = false;    // the current value is a number / true / false / null
  bool have_name_ = false;
  bool args_seen_ = false;  // the arguments value started
  bool header_sent_ = false;
  int index_ = 0;  // the call's index, once its header is sent
  std::string name_;
  std::string args_buf_;  // arguments text not yet emitted
};

}  // namespace c8
