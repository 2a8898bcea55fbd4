// GGUF -> Hugging Face directory conversion: see gguf_convert.h.
#include "c8/formats/gguf_convert.h"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "c8/formats/gguf_dequant.h"
#include "c8/formats/safetensors_writer.h"
#include "c8/util/bf16.h"

namespace c8 {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

constexpr const char* kOutputFiles[] = {"config.json", "generation_config.json", "tokenizer.json",
                                        "tokenizer_config.json", "model.safetensors"};

// SentencePiece/llama.cpp token types.
constexpr int64_t kTokenControl = 3;
constexpr int64_t kTokenUserDefined = 4;

// Regex of the Qwen2 pre-tokenizer (HF tokenizer.json "Split" pattern).
constexpr const char* kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

bool ValidUtf8(const std::string& s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<uint8_t>(s[i]);
    int len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

std::string JsonString(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A float32 metadata value as the shortest decimal that round-trips (1e-05, not
// 9.999999747378752e-06), so config.json shows the number the model author wrote.
double ShortestFloat(const GgufFile& f, const std::string& key, double v) {
  const GgufValue* val = f.Find(key);
  if (!val || val->type != GgufValueType::kFloat32) return v;
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), static_cast<float>(v));
  *r.ptr = '\0';
  return std::strtod(buf, nullptr);
}

// Indents every line after the first of `text` by `pad` spaces.
std::string Indent(const std::string& text, int pad) {
  std::string out;
  const std::string sp(pad, ' ');
  for (char c : text) {
    out.push_back(c);
    if (c == '\n') out += sp;
  }
  return out;
}

Status WriteFileAtomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Error(tmp + ": cannot create");
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      return Error(tmp + ": write failed");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    return Error(path + ": cannot rename from " + tmp + ": " + ec.message());
  }
  return Status::Ok();
}

Status PrepareOutDir(const std::string& out_dir) {
  std::error_code ec;
  const fs::path dir(out_dir);
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) return Error(out_dir + ": cannot create output directory: " + ec.message());
    return Status::Ok();
  }
  if (!fs::is_directory(dir, ec)) return Error(out_dir + ": exists and is not a directory");
  std::set<std::string> ours;
  for (const char* n : kOutputFiles) {
    ours.insert(n);
    ours.insert(std::string(n) + ".tmp");
  }
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!ours.count(name) || !it->is_regular_file()) {
      return Error(out_dir + ": output directory is not empty and contains '" + name +
                   "', which the converter does not write; refusing to overwrite (use an "
                   "empty or new directory)");
    }
  }
  if (ec) return Error(out_dir + ": cannot list output directory: " + ec.message());
  return Status::Ok();
}

// Hyper-parameters of a llama-architecture GGUF.
struct LlamaParams {
  int64_t n_layer = 0, hidden = 0, ffn = 0, n_head = 0, n_kv_head = 0, head_dim = 0;
  int64_t vocab = 0, ctx = 0;
  double eps = 0, rope_theta = 10000.0;
  ojson rope_scaling;  // null unless linear scaling
  bool tied = true;
};

Result<int64_t> PositiveInt(const GgufFile& f, const std::string& key) {
  C8_ASSIGN_OR_RETURN(uint64_t v, f.GetUint(key));
  if (v == 0 || v > (uint64_t{1} << 40)) {
    return Error(f.path() + ": metadata key '" + key + "' = " + std::to_string(v) +
                 " is out of range");
  }
  return static_cast<int64_t>(v);
}

Result<LlamaParams> ReadLlamaParams(const GgufFile& f) {
  C8_ASSIGN_OR_RETURN(std::string arch, f.GetString("general.architecture"));
  if (arch != "llama") {
    return Error(f.path() + ": metadata key 'general.architecture' = '" + arch +
                 "' is not supported (only 'llama')");
  }
  const std::string p = "llama.";
  LlamaParams lp;
  C8_ASSIGN_OR_RETURN(lp.n_layer, PositiveInt(f, p + "block_count"));
  C8_ASSIGN_OR_RETURN(lp.hidden, PositiveInt(f, p + "embedding_length"));
  C8_ASSIGN_OR_RETURN(lp.ffn, PositiveInt(f, p + "feed_forward_length"));
  C8_ASSIGN_OR_RETURN(lp.n_head, PositiveInt(f, p + "attention.head_count"));
  lp.n_kv_head = lp.n_head;
  if (f.Has(p + "attention.head_count_kv")) {
    C8_ASSIGN_OR_RETURN(lp.n_kv_head, PositiveInt(f, p + "attention.head_count_kv"));
  }
  if (lp.n_head % lp.n_kv_head != 0) {
    return Error(f.path() + ": metadata key '" + p +
                 "attention.head_count_kv' = " + std::to_string(lp.n_kv_head) +
                 " does not divide head_count " + std::to_string(lp.n_head));
  }
  if (f.Has(p + "attention.key_length")) {
    C8_ASSIGN_OR_RETURN(lp.head_dim, PositiveInt(f, p + "attention.key_length"));
    if (f.Has(p + "attention.value_length")) {
      C8_ASSIGN_OR_RETURN(int64_t vl, PositiveInt(f, p + "attention.value_length"));
      if (vl != lp.head_dim) {
        return Error(f.path() + ": metadata key '" + p +
                     "attention.value_length' differs from key_length (unsupported)");
      }
    }
  } else {
    if (lp.hidden % lp.n_head != 0) {
      return Error(f.path() + ": metadata key '" + p +
                   "embedding_length' = " + std::to_string(lp.hidden) +
                   " is not a multiple of head_count " + std::to_string(lp.n_head));
    }
    lp.head_dim = lp.hidden / lp.n_head;
  }
  if (lp.head_dim % 2 != 0) {
    return Error(f.path() + ": head dimension " + std::to_string(lp.head_dim) + " is odd");
  }
  if (f.Has(p + "rope.dimension_count")) {
    C8_ASSIGN_OR_RETURN(int64_t rd, PositiveInt(f, p + "rope.dimension_count"));
    if (rd != lp.head_dim) {
      return Error(f.path() + ": metadata key '" + p + "rope.dimension_count' = " +
                   std::to_string(rd) + " differs from the head dimension " +
                   std::to_string(lp.head_dim) + " (partial rotary is not supported)");
    }
  }
  C8_ASSIGN_OR_RETURN(double eps, f.GetFloat(p + "attention.layer_norm_rms_epsilon"));
  lp.eps = ShortestFloat(f, p + "attention.layer_norm_rms_epsilon", eps);
  if (f.Has(p + "rope.freq_base")) {
    C8_ASSIGN_OR_RETURN(double theta, f.GetFloat(p + "rope.freq_base"));
    lp.rope_theta = ShortestFloat(f, p + "rope.freq_base", theta);
  }
  C8_ASSIGN_OR_RETURN(lp.ctx, PositiveInt(f, p + "context_length"));
  if (f.Has(p + "rope.scaling.type")) {
    C8_ASSIGN_OR_RETURN(std::string type, f.GetString(p + "rope.scaling.type"));
    if (type == "linear") {
      C8_ASSIGN_OR_RETURN(double factor, f.GetFloat(p + "rope.scaling.factor"));
      lp.rope_scaling = ojson::object();
      lp.rope_scaling["rope_type"] = "linear";
      lp.rope_scaling["factor"] = ShortestFloat(f, p + "rope.scaling.factor", factor);
    } else if (type != "none") {
      return Error(f.path() + ": metadata key '" + p + "rope.scaling.type' = '" + type +
                   "' is not supported (only 'none' and 'linear')");
    }
  }
  // Vocabulary size: llama.vocab_size, else the token list, else the embedding rows.
  const GgufTensorInfo* embd = f.FindTensor("token_embd.weight");
  if (!embd) return Error(f.path() + ": missing tensor 'token_embd.weight'");
  if (f.Has(p + "vocab_size")) {
    C8_ASSIGN_OR_RETURN(lp.vocab, PositiveInt(f, p + "vocab_size"));
  } else if (const GgufValue* toks = f.Find("tokenizer.ggml.tokens")) {
    lp.vocab = static_cast<int64_t>(toks->ArraySize());
  } else if (embd->ne.size() == 2) {
    lp.vocab = embd->ne[1];
  }
  lp.tied = f.FindTensor("output.weight") == nullptr;
  return lp;
}

// Expected HF shape of each tensor of the llama layout.
Result<std::vector<int64_t>> ExpectedShape(const std::string& gguf_name, const LlamaParams& lp) {
  const int64_t q_dim = lp.n_head * lp.head_dim, kv_dim = lp.n_kv_head * lp.head_dim;
  auto ends = [&](const char* suffix) {
    const std::string s = suffix;
    return gguf_name.size() >= s.size() &&
           gguf_name.compare(gguf_name.size() - s.size(), s.size(), s) == 0;
  };
  if (gguf_name == "token_embd.weight" || gguf_name == "output.weight") {
    return std::vector<int64_t>{lp.vocab, lp.hidden};
  }
  if (gguf_name == "output_norm.weight" || ends(".attn_norm.weight") || ends(".ffn_norm.weight")) {
    return std::vector<int64_t>{lp.hidden};
  }
  if (ends(".attn_q.weight")) return std::vector<int64_t>{q_dim, lp.hidden};
  if (ends(".attn_k.weight") || ends(".attn_v.weight")) {
    return std::vector<int64_t>{kv_dim, lp.hidden};
  }
  if (ends(".attn_output.weight")) return std::vector<int64_t>{lp.hidden, q_dim};
  if (ends(".ffn_gate.weight") || ends(".ffn_up.weight")) {
    return std::vector<int64_t>{lp.ffn, lp.hidden};
  }
  if (ends(".ffn_down.weight")) return std::vector<int64_t>{lp.hidden, lp.ffn};
  return Error("tensor '" + gguf_name + "': unexpected in a llama model");
}

std::string ShapeStr(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t k = 0; k < s.size(); ++k) out += (k ? ", " : "") + std::to_string(s[k]);
  return out + "]";
}

struct TensorPlan {
  const GgufTensorInfo* src;
  std::string hf_name;
  std::vector<int64_t> shape;    // HF order
  int64_t permute_head_dim = 0;  // > 0: un-permute rows (Q/K)
};

Result<std::vector<TensorPlan>> PlanTensors(const GgufFile& f, const LlamaParams& lp) {
  std::vector<TensorPlan> plan;
  std::set<std::string> seen;
  for (const GgufTensorInfo& t : f.tensors()) {
    const std::string what = f.path() + ": tensor '" + t.name + "'";
    Result<std::string> hf = GgufToHfTensorName(t.name);
    if (!hf.ok()) return hf.status().WithContext(f.path());
    // Layer index must be within block_count.
    if (t.name.rfind("blk.", 0) == 0) {
      const int64_t layer = std::strtoll(t.name.c_str() + 4, nullptr, 10);
      if (layer >= lp.n_layer) {
        return Error(what + ": layer " + std::to_string(layer) + " >= block_count " +
                     std::to_string(lp.n_layer));
      }
    }
    C8_ASSIGN_OR_RETURN(std::vector<int64_t> want, ExpectedShape(t.name, lp));
    std::vector<int64_t> shape = t.TorchShape();
    if (shape != want) {
      return Error(what + ": shape " + ShapeStr(shape) + " (GGUF ne reversed) does not match " +
                   ShapeStr(want) + " expected from the metadata");
    }
    if (!CanDequantize(t.type)) {
      return Error(what + ": GGML type " + GgmlTypeName(t.type) +
                   " cannot be converted (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, "
                   "Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)");
    }
    TensorPlan tp{&t, hf.value(), shape, 0};
    const std::string& n = t.name;
    if (n.size() > 14 && (n.compare(n.size() - 14, 14, ".attn_q.weight") == 0 ||
                          n.compare(n.size() - 14, 14, ".attn_k.weight") == 0)) {
      tp.permute_head_dim = lp.head_dim;
    }
    seen.insert(t.name);
    plan.push_back(std::move(tp));
  }
  std::vector<std::string> required = {"token_embd.weight", "output_norm.weight"};
  for (int64_t l = 0; l < lp.n_layer; ++l) {
    for (const char* s : {"attn_norm", "ffn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                          "ffn_gate", "ffn_up", "ffn_down"}) {
      required.push_back("blk." + std::to_string(l) + "." + s + ".weight");
    }
  }
  for (const std::string& r : required) {
    if (!seen.count(r)) return Error(f.path() + ": missing tensor '" + r + "'");
  }
  return plan;
}

// Streams one tensor: dequantize row by row (un-permuting Q/K rows), convert to bf16,
// append in ~1 MiB chunks.
Status WriteTensorBf16(const GgufFile& f, const TensorPlan& tp, SafetensorsWriter& w) {
  const GgufTensorInfo& t = *tp.src;
  const std::string what = f.path() + ": tensor '" + t.name + "'";
  const GgmlTypeInfo* info = GetGgmlTypeInfo(t.type);
  const int64_t ne0 = t.ne[0];
  const int64_t rows = ne0 == 0 ? 0 : t.NumElements() / ne0;
  const uint64_t row_bytes = static_cast<uint64_t>(ne0 / info->block_size * info->type_size);
  std::vector<float> row(static_cast<size_t>(ne0));
  std::vector<uint16_t> chunk;
  const size_t chunk_elems = std::max<size_t>(static_cast<size_t>(ne0), size_t{1} << 19);
  chunk.reserve(chunk_elems);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t src_row =
        tp.permute_head_dim > 0 ? LlamaGgufRowForHfRow(r, tp.permute_head_dim) : r;
    C8_RETURN_IF_ERROR(
        DequantizeRow(t.type, t.data + src_row * row_bytes, ne0, row.data()).WithContext(what));
    for (int64_t k = 0; k < ne0; ++k) chunk.push_back(F32ToBf16(row[k]));
    if (chunk.size() + ne0 > chunk_elems || r == rows - 1) {
      C8_RETURN_IF_ERROR(w.Append(chunk.data(), chunk.size() * sizeof(uint16_t)));
      chunk.clear();
    }
  }
  return Status::Ok();
}

Result<std::vector<std::string>> ReadTokens(const GgufFile& f) {
  C8_ASSIGN_OR_RETURN(std::vector<std::string> tokens, f.GetStringArray("tokenizer.ggml.tokens"));
  if (tokens.empty()) return Error(f.path() + ": metadata key 'tokenizer.ggml.tokens' is empty");
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!ValidUtf8(tokens[i])) {
      return Error(f.path() + ": metadata key 'tokenizer.ggml.tokens': token " + std::to_string(i) +
                   " is not valid UTF-8");
    }
  }
  return tokens;
}

// Optional token id key; -1 when absent. Error when out of range.
Result<int64_t> TokenId(const GgufFile& f, const std::string& key, size_t n_tokens) {
  if (!f.Has(key)) return int64_t{-1};
  C8_ASSIGN_OR_RETURN(uint64_t id, f.GetUint(key));
  if (id >= n_tokens) {
    return Error(f.path() + ": metadata key '" + key + "' = " + std::to_string(id) +
                 " is not a valid token id (vocabulary has " + std::to_string(n_tokens) +
                 " tokens)");
  }
  return static_cast<int64_t>(id);
}

ojson ByteLevel(bool add_prefix_space, bool trim_offsets, bool use_regex) {
  ojson j = ojson::object();
  j["type"] = "ByteLevel";
  j["add_prefix_space"] = add_prefix_space;
  j["trim_offsets"] = trim_offsets;
  j["use_regex"] = use_regex;
  return j;
}

// HF normalizer for a pre-tokenizer type: Qwen2's tokenizer.json applies NFC, others none.
ojson Normalizer(const std::string& pre) {
  if (pre == "qwen2") return ojson::object({{"type", "NFC"}});
  return nullptr;
}

Result<std::string> PreType(const GgufFile& f) {
  std::string pre = "default";  // llama.cpp's default when the key is absent
  if (f.Has("tokenizer.ggml.pre")) {
    C8_ASSIGN_OR_RETURN(pre, f.GetString("tokenizer.ggml.pre"));
  }
  return pre;
}

Result<ojson> PreTokenizer(const GgufFile& f) {
  C8_ASSIGN_OR_RETURN(std::string pre, PreType(f));
  if (pre == "smollm") {
    ojson digits = ojson::object();
    digits["type"] = "Digits";
    digits["individual_digits"] = true;
    ojson seq = ojson::object();
    seq["type"] = "Sequence";
    seq["pretokenizers"] = ojson::array({digits, ByteLevel(false, true, true)});
    return seq;
  }
  if (pre == "gpt2" || pre == "default") return ByteLevel(false, true, true);
  if (pre == "qwen2") {
    ojson split = ojson::object();
    split["type"] = "Split";
    split["pattern"] = ojson::object({{"Regex", kQwen2Regex}});
    split["behavior"] = "Isolated";
    split["invert"] = false;
    ojson seq = ojson::object();
    seq["type"] = "Sequence";
    seq["pretokenizers"] = ojson::array({split, ByteLevel(false, false, false)});
    return seq;
  }
  return Error(f.path() + ": metadata key 'tokenizer.ggml.pre' = '" + pre +
               "' is not supported (supported: smollm, gpt2, default, qwen2)");
}

Status CheckTokenizerModel(const GgufFile& f) {
  C8_ASSIGN_OR_RETURN(std::string model, f.GetString("tokenizer.ggml.model"));
  if (model != "gpt2") {
    return Error(f.path() + ": metadata key 'tokenizer.ggml.model' = '" + model +
                 "' is not supported (only byte-level BPE 'gpt2')");
  }
  return Status::Ok();
}

ojson AddedTokenEntry(const std::string& content, bool special) {
  ojson j = ojson::object();
  j["content"] = content;
  j["single_word"] = false;
  j["lstrip"] = false;
  j["rstrip"] = false;
  j["normalized"] = false;
  j["special"] = special;
  return j;
}

struct TokenizerInfo {
  std::vector<std::string> tokens;
  std::vector<int64_t> types;  // empty when absent
};

Result<TokenizerInfo> ReadTokenizerInfo(const GgufFile& f) {
  C8_RETURN_IF_ERROR(CheckTokenizerModel(f));
  TokenizerInfo ti;
  C8_ASSIGN_OR_RETURN(ti.tokens, ReadTokens(f));
  if (f.Has("tokenizer.ggml.token_type")) {
    C8_ASSIGN_OR_RETURN(ti.types, f.GetIntArray("tokenizer.ggml.token_type"));
    if (ti.types.size() != ti.tokens.size()) {
      return Error(f.path() + ": metadata key 'tokenizer.ggml.token_type' has " +
                   std::to_string(ti.types.size()) + " entries but there are " +
                   std::to_string(ti.tokens.size()) + " tokens");
    }
  }
  return ti;
}

bool IsAddedToken(const TokenizerInfo& ti, size_t id) {
  return !ti.types.empty() && (ti.types[id] == kTokenControl || ti.types[id] == kTokenUserDefined);
}

Result<std::string> BuildTokenizerConfig(const GgufFile& f, const TokenizerInfo& ti,
                                         const LlamaParams& lp) {
  const size_t n = ti.tokens.size();
  ojson cfg = ojson::object();
  bool add_bos = false, add_eos = false;
  if (f.Has("tokenizer.ggml.add_bos_token")) {
    C8_ASSIGN_OR_RETURN(add_bos, f.GetBool("tokenizer.ggml.add_bos_token"));
  }
  if (f.Has("tokenizer.ggml.add_eos_token")) {
    C8_ASSIGN_OR_RETURN(add_eos, f.GetBool("tokenizer.ggml.add_eos_token"));
  }
  cfg["add_bos_token"] = add_bos;
  cfg["add_eos_token"] = add_eos;
  ojson decoder = ojson::object();
  for (size_t id = 0; id < n; ++id) {
    if (IsAddedToken(ti, id)) {
      ojson e = ojson::object();
      e["content"] = ti.tokens[id];
      e["lstrip"] = false;
      e["normalized"] = false;
      e["rstrip"] = false;
      e["single_word"] = false;
      e["special"] = ti.types[id] == kTokenControl;
      decoder[std::to_string(id)] = std::move(e);
    }
  }
  cfg["added_tokens_decoder"] = std::move(decoder);
  auto token_str = [&](const std::string& key) -> Result<ojson> {
    C8_ASSIGN_OR_RETURN(int64_t id, TokenId(f, "tokenizer.ggml." + key, n));
    return id < 0 ? ojson(nullptr) : ojson(ti.tokens[id]);
  };
  C8_ASSIGN_OR_RETURN(cfg["bos_token"], token_str("bos_token_id"));
  if (f.Has("tokenizer.chat_template")) {
    C8_ASSIGN_OR_RETURN(std::string tmpl, f.GetString("tokenizer.chat_template"));
    if (!ValidUtf8(tmpl)) {
      return Error(f.path() + ": metadata key 'tokenizer.chat_template' is not valid UTF-8");
    }
    cfg["chat_template"] = tmpl;
  }
  cfg["clean_up_tokenization_spaces"] = false;
  C8_ASSIGN_OR_RETURN(cfg["eos_token"], token_str("eos_token_id"));
  cfg["model_max_length"] = lp.ctx;
  C8_ASSIGN_OR_RETURN(ojson pad, token_str("padding_token_id"));
  if (!pad.is_null()) cfg["pad_token"] = pad;
  cfg["tokenizer_class"] = "GPT2Tokenizer";
  C8_ASSIGN_OR_RETURN(cfg["unk_token"], token_str("unknown_token_id"));
  cfg["vocab_size"] = n;
  return cfg.dump(2) + "\n";
}

Result<std::string> BuildConfig(const GgufFile& f, const LlamaParams& lp, size_t n_tokens) {
  C8_ASSIGN_OR_RETURN(int64_t bos, TokenId(f, "tokenizer.ggml.bos_token_id", n_tokens));
  C8_ASSIGN_OR_RETURN(int64_t eos, TokenId(f, "tokenizer.ggml.eos_token_id", n_tokens));
  C8_ASSIGN_OR_RETURN(int64_t pad, TokenId(f, "tokenizer.ggml.padding_token_id", n_tokens));
  auto id_or_null = [](int64_t id) { return id < 0 ? ojson(nullptr) : ojson(id); };
  ojson c = ojson::object();
  c["architectures"] = ojson::array({"LlamaForCausalLM"});
  c["attention_bias"] = false;
  c["attention_dropout"] = 0.0;
  c["bos_token_id"] = id_or_null(bos);
  c["eos_token_id"] = id_or_null(eos);
  c["head_dim"] = lp.head_dim;
  c["hidden_act"] = "silu";
  c["hidden_size"] = lp.hidden;
  c["initializer_range"] = 0.02;
  c["intermediate_size"] = lp.ffn;
  c["max_position_embeddings"] = lp.ctx;
  c["mlp_bias"] = false;
  c["model_type"] = "llama";
  c["num_attention_heads"] = lp.n_head;
  c["num_hidden_layers"] = lp.n_layer;
  c["num_key_value_heads"] = lp.n_kv_head;
  if (pad >= 0) c["pad_token_id"] = pad;
  c["pretraining_tp"] = 1;
  c["rms_norm_eps"] = lp.eps;
  c["rope_scaling"] = lp.rope_scaling;
  c["rope_theta"] = lp.rope_theta;
  c["tie_word_embeddings"] = lp.tied;
  c["torch_dtype"] = "bfloat16";
  c["use_cache"] = true;
  c["vocab_size"] = lp.vocab;
  return c.dump(2) + "\n";
}

Result<std::string> BuildGenerationConfig(const GgufFile& f, size_t n_tokens) {
  ojson g = ojson::object();
  g["_from_model_config"] = true;
  for (const char* k : {"bos_token_id", "eos_token_id", "padding_token_id"}) {
    C8_ASSIGN_OR_RETURN(int64_t id, TokenId(f, std::string("tokenizer.ggml.") + k, n_tokens));
    if (id >= 0) g[std::string(k) == "padding_token_id" ? "pad_token_id" : k] = id;
  }
  return g.dump(2) + "\n";
}

Status ConvertImpl(const std::string& gguf_path, const std::string& out_dir,
                   const ProgressFn& progress) {
  C8_ASSIGN_OR_RETURN(GgufFile f, GgufFile::Open(gguf_path));
  C8_ASSIGN_OR_RETURN(LlamaParams lp, ReadLlamaParams(f));
  C8_ASSIGN_OR_RETURN(std::vector<TensorPlan> plan, PlanTensors(f, lp));
  C8_ASSIGN_OR_RETURN(TokenizerInfo ti, ReadTokenizerInfo(f));
  if (static_cast<int64_t>(ti.tokens.size()) > lp.vocab) {
    return Error(gguf_path + ": metadata key 'tokenizer.ggml.tokens' has " +
                 std::to_string(ti.tokens.size()) + " tokens, more than the vocabulary size " +
                 std::to_string(lp.vocab));
  }
  C8_ASSIGN_OR_RETURN(std::string tokenizer_json, BuildHfTokenizerJson(f));
  C8_ASSIGN_OR_RETURN(std::string tokenizer_config, BuildTokenizerConfig(f, ti, lp));
  C8_ASSIGN_OR_RETURN(std::string config, BuildConfig(f, lp, ti.tokens.size()));
  C8_ASSIGN_OR_RETURN(std::string gen_config, BuildGenerationConfig(f, ti.tokens.size()));

  C8_RETURN_IF_ERROR(PrepareOutDir(out_dir));
  const fs::path dir(out_dir);
  std::vector<SafetensorsTensorSpec> specs;
  specs.reserve(plan.size());
  for (const TensorPlan& tp : plan) {
    specs.push_back({tp.hf_name, SafetensorsDtype::kBF16, tp.shape});
  }
  C8_ASSIGN_OR_RETURN(
      SafetensorsWriter w,
      SafetensorsWriter::Create((dir / "model.safetensors").string(), std::move(specs)));
  const auto total = static_cast<int64_t>(plan.size());
  if (progress) progress(0, total, "converting " + gguf_path);
  for (int64_t i = 0; i < total; ++i) {
    C8_RETURN_IF_ERROR(WriteTensorBf16(f, plan[i], w));
    if (progress) progress(i + 1, total, plan[i].hf_name);
  }
  C8_RETURN_IF_ERROR(w.Finish());
  C8_RETURN_IF_ERROR(WriteFileAtomic((dir / "tokenizer.json").string(), tokenizer_json));
  C8_RETURN_IF_ERROR(WriteFileAtomic((dir / "tokenizer_config.json").string(), tokenizer_config));
  C8_RETURN_IF_ERROR(WriteFileAtomic((dir / "generation_config.json").string(), gen_config));
  C8_RETURN_IF_ERROR(WriteFileAtomic((dir / "config.json").string(), config));
  return Status::Ok();
}

}  // namespace

Result<std::string> GgufToHfTensorName(const std::string& g) {
  if (g == "token_embd.weight") return std::string("model.embed_tokens.weight");
  if (g == "output_norm.weight") return std::string("model.norm.weight");
  if (g == "output.weight") return std::string("lm_head.weight");
  static const std::pair<const char*, const char*> kLayer[] = {
      {"attn_norm.weight", "input_layernorm.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_output.weight", "self_attn.o_proj.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},
  };
  if (g.rfind("blk.", 0) == 0) {
    size_t k = 4;
    while (k < g.size() && g[k] >= '0' && g[k] <= '9') ++k;
    if (k > 4 && k - 4 <= 6 && k < g.size() && g[k] == '.' && !(g[4] == '0' && k > 5)) {
      const std::string layer = g.substr(4, k - 4);
      const std::string rest = g.substr(k + 1);
      for (const auto& [from, to] : kLayer) {
        if (rest == from) return "model.layers." + layer + "." + to;
      }
    }
  }
  return Error("tensor '" + g + "': not part of the llama layout (unsupported tensor)");
}

int64_t LlamaGgufRowForHfRow(int64_t hf_row, int64_t head_dim) {
  // hf row h*hd + i*hd/2 + j  <-  gguf row h*hd + 2j + i
  const int64_t half = head_dim / 2;
  const int64_t h = hf_row / head_dim, r = hf_row % head_dim;
  const int64_t i = r / half, j = r % half;
  return h * head_dim + 2 * j + i;
}

Result<std::string> BuildHfTokenizerJson(const GgufFile& f) {
  C8_ASSIGN_OR_RETURN(TokenizerInfo ti, ReadTokenizerInfo(f));
  C8_ASSIGN_OR_RETURN(ojson pre, PreTokenizer(f));
  C8_ASSIGN_OR_RETURN(std::vector<std::string> merges, f.GetStringArray("tokenizer.ggml.merges"));
  const std::string mkey = f.path() + ": metadata key 'tokenizer.ggml.merges'";

  std::unordered_map<std::string, int64_t> vocab;
  vocab.reserve(ti.tokens.size() * 2);
  for (size_t id = 0; id < ti.tokens.size(); ++id) {
    auto [it, fresh] = vocab.emplace(ti.tokens[id], static_cast<int64_t>(id));
    if (!fresh) {
      return Error(f.path() + ": metadata key 'tokenizer.ggml.tokens': token " +
                   std::to_string(id) + " duplicates token " + std::to_string(it->second) + " (" +
                   JsonString(ti.tokens[id]) + ")");
    }
  }

  std::string out;
  out.reserve(ti.tokens.size() * 24 + merges.size() * 32 + 4096);
  out += "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n";
  out += "  \"added_tokens\": [";
  bool first = true;
  for (size_t id = 0; id < ti.tokens.size(); ++id) {
    if (!IsAddedToken(ti, id)) continue;
    ojson e = ojson::object();
    e["id"] = id;
    const ojson rest = AddedTokenEntry(ti.tokens[id], ti.types[id] == kTokenControl);
    for (auto it = rest.begin(); it != rest.end(); ++it) e[it.key()] = it.value();
    out += first ? "\n    " : ",\n    ";
    out += Indent(e.dump(2), 4);
    first = false;
  }
  out += first ? "],\n" : "\n  ],\n";
  C8_ASSIGN_OR_RETURN(std::string pre_type, PreType(f));
  out += "  \"normalizer\": " + Normalizer(pre_type).dump() + ",\n";
  out += "  \"pre_tokenizer\": " + Indent(pre.dump(2), 2) + ",\n";
  out += "  \"post_processor\": null,\n";
  out += "  \"decoder\": " + Indent(ByteLevel(true, true, true).dump(2), 2) + ",\n";
  out +=
      "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
      "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"
      "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n"
      "    \"vocab\": {";
  for (size_t id = 0; id < ti.tokens.size(); ++id) {
    out += id ? ",\n      " : "\n      ";
    out += JsonString(ti.tokens[id]) + ": " + std::to_string(id);
  }
  out += "\n    },\n    \"merges\": [";
  for (size_t m = 0; m < merges.size(); ++m) {
    const std::string& s = merges[m];
    const size_t sp = s.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size() ||
        s.find(' ', sp + 1) != std::string::npos) {
      return Error(mkey + ": merge " + std::to_string(m) + " (" + JsonString(s) +
                   ") is not two tokens separated by one space");
    }
    const std::string a = s.substr(0, sp), b = s.substr(sp + 1);
    for (const std::string* part : {&a, &b}) {
      if (!vocab.count(*part)) {
        return Error(mkey + ": merge " + std::to_string(m) + " (" + JsonString(s) + ") uses " +
                     JsonString(*part) + ", which is not in the vocabulary");
      }
    }
    if (!vocab.count(a + b)) {
      return Error(mkey + ": merge " + std::to_string(m) + " (" + JsonString(s) + ") produces " +
                   JsonString(a + b) + ", which is not in the vocabulary");
    }
    out += m ? ",\n      [" : "\n      [";
    out += JsonString(a) + ", " + JsonString(b) + "]";
  }
  out += merges.empty() ? "]\n  }\n}\n" : "\n    ]\n  }\n}\n";
  return out;
}

Status ConvertGgufToHf(const std::string& gguf_path, const std::string& out_dir,
                       const ProgressFn& progress) {
  try {
    return ConvertImpl(gguf_path, out_dir, progress);
  } catch (const std::exception& e) {  // e.g. std::bad_alloc, JSON encoding errors
    return Error(gguf_path + ": conversion failed: " + e.what());
  }
}

}  // namespace c8
