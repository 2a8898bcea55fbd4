#include "c8/tokenizer/bpe_model.h"

#include <cstdio>
#include <queue>

#include "c8/tokenizer/utf8.h"

namespace c8 {

namespace {

// A symbol of a word being merged: doubly linked over the initial positions; len == 0 marks a
// symbol merged into its left neighbour.
struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  size_t len;
};

// A candidate merge at symbol `pos`; the queue pops the lowest rank, then the lowest pos.
struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

Result<std::optional<std::string>> GetOptString(const nlohmann::json& j, const char* key,
                                                const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return Error(where + "." + key + ": expected a string or null");
  return std::optional<std::string>(it->get<std::string>());
}

Result<bool> GetBool(const nlohmann::json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean()) return Error(where + "." + key + ": expected a boolean");
  return it->get<bool>();
}

}  // namespace

Result<std::unique_ptr<BpeModel>> BpeModel::FromJson(const nlohmann::json& j,
                                                     const std::string& where) {
  if (!j.is_object()) return Error(where + ": missing or not an object");
  auto type = j.find("type");
  if (type != j.end() && !type->is_null()) {
    if (!type->is_string() || type->get<std::string>() != "BPE") {
      return Error(where + ".type: unsupported model type " + type->dump() +
                   " (only \"BPE\" is supported)");
    }
  }
  auto m = std::unique_ptr<BpeModel>(new BpeModel());
  if (auto d = j.find("dropout"); d != j.end() && !d->is_null()) {
    if (!d->is_number()) return Error(where + ".dropout: expected a number or null");
    if (d->get<double>() != 0.0) {
      return Error(where + ".dropout: BPE dropout is not supported (must be null or 0)");
    }
  }
  C8_ASSIGN_OR_RETURN(m->unk_token_, GetOptString(j, "unk_token", where));
  C8_ASSIGN_OR_RETURN(m->continuing_subword_prefix_,
                      GetOptString(j, "continuing_subword_prefix", where));
  C8_ASSIGN_OR_RETURN(m->end_of_word_suffix_, GetOptString(j, "end_of_word_suffix", where));
  C8_ASSIGN_OR_RETURN(m->fuse_unk_, GetBool(j, "fuse_unk", where));
  C8_ASSIGN_OR_RETURN(m->byte_fallback_, GetBool(j, "byte_fallback", where));
  C8_ASSIGN_OR_RETURN(m->ignore_merges_, GetBool(j, "ignore_merges", where));

  auto vocab = j.find("vocab");
  if (vocab == j.end() || !vocab->is_object()) {
    return Error(where + ".vocab: missing or not an object of token -> id");
  }
  m->vocab_.reserve(vocab->size());
  int64_t max_id = -1;
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > INT32_MAX - 1) {
      return Error(where + ".vocab: token '" + it.key() + "' has an invalid id " +
                   it.value().dump());
    }
    const int64_t id = it.value().get<int64_t>();
    m->vocab_[it.key()] = static_cast<int32_t>(id);
    max_id = std::max(max_id, id);
  }
  if (max_id > 16 * 1024 * 1024) return Error(where + ".vocab: ids too large");
  m->id_to_token_.resize(static_cast<size_t>(max_id + 1));
  for (const auto& [tok, id] : m->vocab_) m->id_to_token_[id] = tok;

  if (m->unk_token_ && !m->vocab_.count(*m->unk_token_)) {
    return Error(where + ".unk_token: '" + *m->unk_token_ + "' is not in model.vocab");
  }
  m->byte_fallback_ids_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    m->byte_fallback_ids_[b] = m->TokenToId(name);
  }

  auto merges = j.find("merges");
  if (merges == j.end() || merges->is_null()) {
    return Error(where + ".merges: missing");
  }
  if (!merges->is_array()) return Error(where + ".merges: expected an array");
  const size_t prefix_len =
      m->continuing_subword_prefix_ ? m->continuing_subword_prefix_->size() : 0;
  m->merges_.reserve(merges->size());
  int32_t rank = 0;
  for (size_t i = 0; i < merges->size(); ++i) {
    const nlohmann::json& e = (*merges)[i];
    const std::string at = where + ".merges[" + std::to_string(i) + "]";
    std::string a, b;
    if (e.is_string()) {  // "a b"
      const std::string s = e.get<std::string>();
      if (s.rfind("#version", 0) == 0) continue;
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
        return Error(at + ": expected \"left right\" with exactly one space, got '" + s + "'");
      }
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    } else {
      return Error(at + ": expected a string \"left right\" or a pair [left, right]");
    }
    const int32_t a_id = m->TokenToId(a);
    const int32_t b_id = m->TokenToId(b);
    if (a_id < 0) return Error(at + ": token '" + a + "' is not in model.vocab");
    if (b_id < 0) return Error(at + ": token '" + b + "' is not in model.vocab");
    if (b.size() < prefix_len) return Error(at + ": token '" + b + "' is shorter than the prefix");
    const std::string merged = a + b.substr(prefix_len);
    const int32_t new_id = m->TokenToId(merged);
    if (new_id < 0) return Error(at + ": merged token '" + merged + "' is not in model.vocab");
    m->merges_[PairKey(a_id, b_id)] = Merge{rank, new_id};  // a later duplicate wins, as in HF
    ++rank;
  }
  return m;
}

int32_t BpeModel::TokenToId(std::string_view token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !id_to_token_[id]) {
    return nullptr;
  }
  return &*id_to_token_[id];
}

void BpeModel::Tokenize(std::string_view word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (int32_t id = TokenToId(word); id >= 0) {
      out->push_back(id);
      return;
    }
  }
  if (word.size() > kMaxCachedWordBytes) {
    TokenizeUncached(word, out);
    return;
  }
  CacheShard& shard = cache_[std::hash<std::string_view>{}(word) % kShards];
  {
    std::shared_lock lock(shard.mu);
    auto it = shard.map.find(word);
    if (it != shard.map.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  TokenizeUncached(word, &ids);
  out->insert(out->end(), ids.begin(), ids.end());
  std::unique_lock lock(shard.mu);
  if (shard.map.size() < kShardCapacity) shard.map.emplace(std::string(word), std::move(ids));
}

void BpeModel::TokenizeUncached(std::string_view word, std::vector<int32_t>* out) const {
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto add = [&symbols](int32_t id, size_t len) {
    const int32_t n = static_cast<int32_t>(symbols.size());
    if (n > 0) symbols.back().next = n;
    symbols.push_back(Symbol{id, n - 1, -1, len});
  };
  bool has_unk = false;  // a pending unk symbol (unk_id, unk_len)
  int32_t unk_id = -1;
  size_t unk_len = 0;
  std::string s;
  size_t pos = 0;
  while (pos < word.size()) {
    const size_t begin = pos;
    pos += Utf8CharLen(static_cast<unsigned char>(word[pos]));
    if (pos > word.size()) pos = word.size();
    const size_t byte_len = pos - begin;
    s.assign(word.substr(begin, byte_len));
    if (begin != 0 && continuing_subword_prefix_) s.insert(0, *continuing_subword_prefix_);
    if (pos == word.size() && end_of_word_suffix_) s += *end_of_word_suffix_;
    if (int32_t id = TokenToId(s); id >= 0) {
      if (has_unk) {
        add(unk_id, unk_len);
        has_unk = false;
      }
      add(id, byte_len);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char c : s) all = all && byte_fallback_ids_[c] >= 0;
      if (all) {
        for (unsigned char c : s) add(byte_fallback_ids_[c], 1);
        continue;
      }
    }
    if (unk_token_) {
      if (has_unk && fuse_unk_) {
        unk_len += byte_len;
      } else {
        if (has_unk) add(unk_id, unk_len);
        has_unk = true;
        unk_id = TokenToId(*unk_token_);
        unk_len = byte_len;
      }
    }
    // Without unk_token and byte fallback, a character outside the vocabulary is dropped (HF).
  }
  if (has_unk) add(unk_id, unk_len);

  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto lookup = [this](int32_t a, int32_t b) -> const Merge* {
    auto it = merges_.find(PairKey(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const Merge* mg = lookup(symbols[i].id, symbols[i + 1].id)) {
      queue.push(Candidate{mg->rank, static_cast<int32_t>(i), mg->new_id});
    }
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& cur = symbols[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    const int32_t next_pos = cur.next;
    const Symbol right = symbols[next_pos];
    const Merge* mg = lookup(cur.id, right.id);
    if (mg == nullptr || mg->new_id != top.new_id) continue;  // stale entry
    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    symbols[next_pos].len = 0;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (cur.prev >= 0) {
      if (const Merge* pm = lookup(symbols[cur.prev].id, cur.id)) {
        queue.push(Candidate{pm->rank, cur.prev, pm->new_id});
      }
    }
    if (cur.next >= 0) {
      if (const Merge* nm = lookup(cur.id, symbols[cur.next].id)) {
        queue.push(Candidate{nm->rank, top.pos, nm->new_id});
      }
    }
  }
  for (const Symbol& sym : symbols) {
    if (sym.len != 0) out->push_back(sym.id);
  }
}

}  // namespace c8
