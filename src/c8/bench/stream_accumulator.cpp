#include "c8/bench/stream_accumulator.h"

#include <nlohmann/json.hpp>
#include <string>

namespace c8::bench {

bool StreamAccumulator::Consume(std::string_view payload, double t) {
  if (failed_) return false;
  if (payload == "[DONE]") {
    done_ = true;
    return true;
  }
  nlohmann::json j = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    failed_ = true;
    out_->success = false;
    out_->error = "stream chunk is not a JSON object: " + std::string(payload.substr(0, 200));
    return false;
  }
  if (auto e = j.find("error"); e != j.end() && !e->is_null()) {
    failed_ = true;
    out_->success = false;
    std::string msg;
    if (e->is_object() && e->contains("message") && (*e)["message"].is_string()) {
      msg = (*e)["message"].get<std::string>();
    } else {
      msg = e->dump();
    }
    out_->error = "error in stream: " + msg;
    return false;
  }
  auto choices = j.find("choices");
  if (choices != j.end() && choices->is_array() && !choices->empty()) {
    const nlohmann::json& c0 = (*choices)[0];
    if (first_) {
      first_ = false;
      out_->ttft = t - out_->start_time;
    } else {
      out_->itl.push_back(t - last_);
    }
    last_ = t;
    ++out_->num_chunks;
    if (c0.is_object()) {
      if (auto tx = c0.find("text"); tx != c0.end() && tx->is_string()) {
        out_->generated_text += tx->get_ref<const std::string&>();
      } else if (auto d = c0.find("delta"); d != c0.end() && d->is_object()) {
        if (auto ct = d->find("content"); ct != d->end() && ct->is_string()) {
          out_->generated_text += ct->get_ref<const std::string&>();
        }
      }
    }
    return true;
  }
  if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
    if (auto ct = u->find("completion_tokens"); ct != u->end() && ct->is_number_integer()) {
      out_->output_tokens = ct->get<int64_t>();
    }
    if (auto pt = u->find("prompt_tokens"); pt != u->end() && pt->is_number_integer()) {
      out_->prompt_len = pt->get<int64_t>();
    }
  }
  return true;
}

void StreamAccumulator::Finish() {
  if (failed_) return;
  if (first_) {
    out_->success = false;
    out_->error = "Never received a valid chunk to calculate TTFT.";
    return;
  }
  out_->success = true;
  out_->latency = last_ - out_->start_time;
}

}  // namespace c8::bench
