#include "c8/tokenizer/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "c8/tokenizer/bpe_model.h"
#include "c8/tokenizer/byte_level.h"
#include "c8/tokenizer/normalizer.h"
#include "c8/tokenizer/pre_tokenizer.h"
#include "c8/tokenizer/utf8.h"

namespace c8 {

namespace {

struct AddedToken {
  int32_t id;
  std::string content;
  std::string pattern;  // what is matched: content, normalized when `normalized`
  bool single_word;
  bool lstrip;
  bool rstrip;
  bool normalized;
  bool special;
};

// Byte trie over added-token patterns for leftmost-longest matching.
class AddedTokenTrie {
 public:
  void Insert(std::string_view pattern, int32_t token_index) {
    if (pattern.empty()) return;
    if (terminal_.empty()) terminal_.push_back(-1);  // root
    int32_t node = 0;
    for (unsigned char c : pattern) {
      const uint64_t key = (static_cast<uint64_t>(node) << 8) | c;
      auto it = edges_.find(key);
      if (it == edges_.end()) {
        const int32_t child = static_cast<int32_t>(terminal_.size());
        terminal_.push_back(-1);
        edges_.emplace(key, child);
        node = child;
      } else {
        node = it->second;
      }
    }
    terminal_[node] = token_index;
  }
  bool empty() const { return terminal_.empty(); }

  struct Match {
    size_t begin;
    size_t end;
    int32_t token_index;
  };
  // Non-overlapping leftmost-longest matches in `text`.
  std::vector<Match> FindAll(std::string_view text) const {
    std::vector<Match> out;
    if (empty()) return out;
    size_t pos = 0;
    while (pos < text.size()) {
      int32_t node = 0;
      int32_t best = -1;
      size_t best_end = 0;
      for (size_t i = pos; i < text.size(); ++i) {
        auto it =
            edges_.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[i]));
        if (it == edges_.end()) break;
        node = it->second;
        if (terminal_[node] >= 0) {
          best = terminal_[node];
          best_end = i + 1;
        }
      }
      if (best >= 0) {
        out.push_back({pos, best_end, best});
        pos = best_end;
      } else {
        ++pos;
      }
    }
    return out;
  }

 private:
  std::unordered_map<uint64_t, int32_t> edges_;  // (node << 8 | byte) -> child node
  std::vector<int32_t> terminal_;                // node -> token index, -1 if none
};

enum class DecoderKind { kNone, kByteLevel };

// Last code point of valid UTF-8 `s` (non-empty).
char32_t LastCodePoint(std::string_view s) {
  size_t pos = s.size() - 1;
  while (pos > 0 && (static_cast<unsigned char>(s[pos]) & 0xC0) == 0x80) --pos;
  return NextCodePoint(s, &pos);
}

char32_t FirstCodePoint(std::string_view s) {
  size_t pos = 0;
  return NextCodePoint(s, &pos);
}

Result<bool> GetFlag(const nlohmann::json& j, const char* key, bool dflt,
                     const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_boolean()) return Error(where + "." + key + ": expected a boolean");
  return it->get<bool>();
}

}  // namespace

struct Tokenizer::Impl {
  std::string name;  // the file, for messages
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  DecoderKind decoder = DecoderKind::kNone;
  std::vector<AddedToken> added;                              // by index
  std::unordered_map<std::string, int32_t> added_by_content;  // content -> id
  std::unordered_map<int32_t, int32_t> added_by_id;           // id -> index into `added`
  AddedTokenTrie raw_trie;                                    // tokens with normalized = false
  AddedTokenTrie normalized_trie;                             // tokens with normalized = true
  std::vector<bool> special_by_id;                            // id -> token string is special
  int32_t vocab_size = 0;

  // The token string of `id` as HF decode sees it; nullptr if unknown.
  const std::string* TokenString(int32_t id) const {
    if (auto it = added_by_id.find(id); it != added_by_id.end()) {
      return &added[it->second].pattern;
    }
    return model->IdToToken(id);
  }

  // HF AddedVocabulary::find_matches + split: appends (piece, id or -1) of `text`.
  void SplitOnAdded(const std::string& text, const AddedTokenTrie& trie, bool parse_special,
                    std::vector<std::pair<std::string, int32_t>>* out) const {
    if (trie.empty()) {
      out->emplace_back(text, -1);
      return;
    }
    size_t start_offset = 0;
    for (const auto& m : trie.FindAll(text)) {
      size_t start = m.begin;
      size_t stop = m.end;
      const AddedToken& tok = added[m.token_index];
      if (!parse_special && tok.special) continue;
      if (tok.single_word) {
        const bool start_space = start == 0 || !IsWordChar(LastCodePoint(text.substr(0, start)));
        const bool stop_space =
            stop == text.size() || !IsWordChar(FirstCodePoint(std::string_view(text).substr(stop)));
        if (!start_space || !stop_space) continue;
      }
      if (tok.lstrip) {
        size_t new_start = start;
        while (new_start > 0) {
          size_t p = new_start - 1;
          while (p > 0 && (static_cast<unsigned char>(text[p]) & 0xC0) == 0x80) --p;
          size_t q = p;
          if (!IsWhiteSpace(NextCodePoint(text, &q))) break;
          new_start = p;
        }
        start = std::max(new_start, start_offset);
      }
      if (tok.rstrip) {
        while (stop < text.size()) {
          size_t q = stop;
          if (!IsWhiteSpace(NextCodePoint(text, &q))) break;
          stop = q;
        }
      }
      if (start_offset < start)
        out->emplace_back(text.substr(start_offset, start - start_offset), -1);
      out->emplace_back(std::string(), tok.id);
      start_offset = stop;
    }
    if (start_offset < text.size()) out->emplace_back(text.substr(start_offset), -1);
  }
};

Result<Tokenizer> Tokenizer::FromFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Error(path + ": is a directory, expected a tokenizer.json file");
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) return Error(path + ": cannot open tokenizer file");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Error(path + ": read error");
  return FromJsonString(ss.str(), path);
}

Result<Tokenizer> Tokenizer::FromJsonString(std::string_view json_text, const std::string& name) {
  nlohmann::json root = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return Error(name + ": malformed JSON");
  if (!root.is_object()) return Error(name + ": top level is not a JSON object");
  auto impl = std::make_shared<Impl>();
  impl->name = name;
  const std::string at = name + ": ";

  for (const char* key : {"truncation", "padding"}) {
    if (auto it = root.find(key); it != root.end() && !it->is_null()) {
      return Error(at + key + ": not supported (must be null)");
    }
  }
  // Model.
  auto model = root.find("model");
  if (model == root.end()) return Error(at + "model: missing");
  C8_ASSIGN_OR_RETURN(impl->model, BpeModel::FromJson(*model, at + "model"));
  // Normalizer, pre-tokenizer.
  if (auto it = root.find("normalizer"); it != root.end()) {
    C8_ASSIGN_OR_RETURN(impl->normalizer, ParseNormalizer(*it, at + "normalizer"));
  }
  if (auto it = root.find("pre_tokenizer"); it != root.end()) {
    C8_ASSIGN_OR_RETURN(impl->pre_tokenizer, ParsePreTokenizer(*it, at + "pre_tokenizer"));
  }
  // Post-processor: only ones that do not change ids.
  if (auto it = root.find("post_processor"); it != root.end() && !it->is_null()) {
    const auto type = it->is_object() ? it->value("type", std::string()) : std::string();
    if (type != "ByteLevel") {
      return Error(at + "post_processor.type: unsupported post-processor '" + type +
                   "' (supported: ByteLevel, null)");
    }
  }
  // Decoder.
  if (auto it = root.find("decoder"); it != root.end() && !it->is_null()) {
    const std::string where = at + "decoder";
    if (!it->is_object() || !it->contains("type") || !(*it)["type"].is_string()) {
      return Error(where + ".type: missing or not a string");
    }
    const std::string type = (*it)["type"].get<std::string>();
    if (type == "ByteLevel") {
      impl->decoder = DecoderKind::kByteLevel;
    } else if (type == "Sequence") {
      auto d = it->find("decoders");
      if (d == it->end() || !d->is_array())
        return Error(where + ".decoders: missing or not an array");
      int byte_level = 0;
      for (size_t i = 0; i < d->size(); ++i) {
        const auto& e = (*d)[i];
        const std::string t = e.is_object() ? e.value("type", std::string()) : std::string();
        if (t != "ByteLevel") {
          return Error(where + ".decoders[" + std::to_string(i) + "].type: unsupported decoder '" +
                       t + "' (supported: ByteLevel)");
        }
        ++byte_level;
      }
      if (byte_level != 1)
        return Error(where + ".decoders: expected exactly one ByteLevel decoder");
      impl->decoder = DecoderKind::kByteLevel;
    } else {
      return Error(where + ".type: unsupported decoder type '" + type +
                   "' (supported: ByteLevel, Sequence, null)");
    }
  }
  // Added tokens.
  if (auto it = root.find("added_tokens"); it != root.end() && !it->is_null()) {
    if (!it->is_array()) return Error(at + "added_tokens: expected an array");
    for (size_t i = 0; i < it->size(); ++i) {
      const auto& e = (*it)[i];
      const std::string where = at + "added_tokens[" + std::to_string(i) + "]";
      if (!e.is_object()) return Error(where + ": expected an object");
      auto content = e.find("content");
      if (content == e.end() || !content->is_string()) {
        return Error(where + ".content: missing or not a string");
      }
      AddedToken tok;
      tok.content = content->get<std::string>();
      C8_ASSIGN_OR_RETURN(tok.special, GetFlag(e, "special", false, where));
      C8_ASSIGN_OR_RETURN(tok.single_word, GetFlag(e, "single_word", false, where));
      C8_ASSIGN_OR_RETURN(tok.lstrip, GetFlag(e, "lstrip", false, where));
      C8_ASSIGN_OR_RETURN(tok.rstrip, GetFlag(e, "rstrip", false, where));
      C8_ASSIGN_OR_RETURN(tok.normalized, GetFlag(e, "normalized", !tok.special, where));
      if (tok.content.empty()) continue;  // HF ignores empty added tokens
      // HF: an existing id for the content wins over the id written in the file.
      int32_t id = -1;
      if (auto a = impl->added_by_content.find(tok.content); a != impl->added_by_content.end()) {
        id = a->second;
      } else {
        id = impl->model->TokenToId(tok.content);
      }
      if (id < 0) {
        auto idj = e.find("id");
        if (idj == e.end() || !idj->is_number_integer() || idj->get<int64_t>() < 0 ||
            idj->get<int64_t>() > 16 * 1024 * 1024) {
          return Error(where + ".id: missing or invalid for a token not in model.vocab");
        }
        id = static_cast<int32_t>(idj->get<int64_t>());
      }
      tok.id = id;
      tok.pattern = tok.content;
      if (tok.normalized && impl->normalizer) {
        tok.pattern = impl->normalizer->Normalize(tok.content);
      }
      impl->added_by_content[tok.content] = id;
      if (auto old = impl->added_by_id.find(id); old != impl->added_by_id.end()) {
        impl->added[old->second] = tok;  // a later entry for the same id replaces the earlier
      } else {
        impl->added_by_id[id] = static_cast<int32_t>(impl->added.size());
        impl->added.push_back(tok);
      }
    }
  }
  for (size_t i = 0; i < impl->added.size(); ++i) {
    const AddedToken& t = impl->added[i];
    (t.normalized ? impl->normalized_trie : impl->raw_trie)
        .Insert(t.pattern, static_cast<int32_t>(i));
  }
  // Sizes and the special-token table.
  impl->vocab_size = impl->model->id_limit();
  std::unordered_set<std::string> special_contents;
  for (const AddedToken& t : impl->added) {
    impl->vocab_size = std::max(impl->vocab_size, t.id + 1);
    if (t.special) special_contents.insert(t.content);
  }
  impl->special_by_id.assign(static_cast<size_t>(impl->vocab_size), false);
  if (!special_contents.empty()) {
    for (int32_t id = 0; id < impl->vocab_size; ++id) {
      const std::string* s = impl->TokenString(id);
      if (s && special_contents.count(*s)) impl->special_by_id[id] = true;
    }
  }
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::Encode(std::string_view input, bool parse_special) const {
  const Impl& im = *impl_;
  const std::string text = SanitizeUtf8(input);
  std::vector<int32_t> ids;
  if (text.empty()) return ids;
  ids.reserve(text.size() / 3 + 4);

  std::vector<std::pair<std::string, int32_t>> raw_pieces;
  im.SplitOnAdded(text, im.raw_trie, parse_special, &raw_pieces);
  std::vector<std::pair<std::string, int32_t>> pieces;
  for (auto& [piece, id] : raw_pieces) {
    if (id >= 0) {
      pieces.emplace_back(std::string(), id);
      continue;
    }
    if (piece.empty()) continue;
    std::string normalized = im.normalizer ? im.normalizer->Normalize(piece) : std::move(piece);
    if (normalized.empty()) continue;
    im.SplitOnAdded(normalized, im.normalized_trie, parse_special, &pieces);
  }
  std::vector<std::string> words;
  for (auto& [piece, id] : pieces) {
    if (id >= 0) {
      ids.push_back(id);
      continue;
    }
    if (piece.empty()) continue;
    if (!im.pre_tokenizer) {
      im.model->Tokenize(piece, &ids);
      continue;
    }
    words.clear();
    words.push_back(std::move(piece));
    im.pre_tokenizer->PreTokenize(&words);
    for (const std::string& w : words) im.model->Tokenize(w, &ids);
  }
  return ids;
}

bool Tokenizer::AppendTokenBytes(int32_t id, bool skip_special, bool first,
                                 std::string* out) const {
  const Impl& im = *impl_;
  const std::string* tok = im.TokenString(id);
  if (tok == nullptr) return false;
  if (skip_special && IsSpecial(id)) return false;
  if (im.decoder == DecoderKind::kByteLevel) {
    ByteLevelDecode(*tok, out);
  } else {
    if (!first) out->push_back(' ');
    out->append(*tok);
  }
  return true;
}

bool Tokenizer::byte_level() const {
  return impl_->decoder == DecoderKind::kByteLevel;
}

std::string Tokenizer::TokenBytes(int32_t id) const {
  std::string out;
  AppendTokenBytes(id, /*skip_special=*/true, /*first=*/true, &out);
  return out;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  bool first = true;
  for (int32_t id : ids) {
    if (AppendTokenBytes(id, skip_special, first, &bytes)) first = false;
  }
  return SanitizeUtf8(bytes);
}

int32_t Tokenizer::TokenToId(std::string_view token) const {
  if (auto it = impl_->added_by_content.find(std::string(token));
      it != impl_->added_by_content.end()) {
    return it->second;
  }
  return impl_->model->TokenToId(token);
}

std::string Tokenizer::IdToToken(int32_t id) const {
  if (auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end()) {
    return impl_->added[it->second].content;
  }
  const std::string* s = impl_->model->IdToToken(id);
  return s ? *s : std::string();
}

int32_t Tokenizer::vocab_size() const {
  return impl_->vocab_size;
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < impl_->vocab_size && impl_->special_by_id[id];
}

}  // namespace c8
