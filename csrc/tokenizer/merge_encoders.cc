// Byte-level BPE by merge rank and SentencePiece BPE by piece score (see merge_encoders.h).
#include "tokenizer/merge_encoders.h"

#include <limits>
#include <queue>

#include "llmasos/errors.hpp"
#include "tokenizer/unicode.h"

namespace llmasos {
namespace {

constexpr int32_t kDead = std::numeric_limits<int32_t>::min();

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

int32_t lookup(const TokenIds& ids, const std::string& s) {
  auto it = ids.find(s);
  return it == ids.end() ? -1 : it->second;
}

}  // namespace

BpeEncoder::BpeEncoder(const TokenIds& ids, const std::vector<std::string>& merges) {
  for (int b = 0; b < 256; ++b) byte_ids_[b] = lookup(ids, unicode::byte_to_unicode(static_cast<uint8_t>(b)));
  merges_.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const std::string& m = merges[r];
    const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (sp == std::string::npos || sp + 1 >= m.size())
      throw ModelFormatError("tokenizer.ggml.merges[" + std::to_string(r) + "] = '" + m.substr(0, 64) +
                             "' is not of the form 'a b'");
    const std::string left = m.substr(0, sp), right = m.substr(sp + 1);
    const int32_t a = lookup(ids, left), b = lookup(ids, right), ab = lookup(ids, left + right);
    if (a < 0 || b < 0 || ab < 0) continue;
    merges_.emplace(pair_key(a, b), Merge{static_cast<int32_t>(r), ab});  // first rank wins
  }
}

void BpeEncoder::encode_piece(std::string_view bytes, int32_t unk_id, std::vector<int32_t>& out) const {
  // Symbols start as one per byte (each byte is one character of the byte-level alphabet) and
  // form a doubly linked list; merged-away symbols are marked dead. A byte whose character is not
  // in the vocabulary becomes an unk_id symbol (which merges with nothing); without an unk_id it is
  // dropped before merging, so its neighbours may merge, as Hugging Face tokenizers does (" \x16:"
  // is "Ġ:" with SmolLM2's vocabulary, which lacks 0x16).
  struct Sym { int32_t id; int prev, next; };
  std::vector<Sym> s;
  s.reserve(bytes.size());
  for (char c : bytes) {
    const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
    if (id < 0 && unk_id < 0) continue;
    const int i = static_cast<int>(s.size());
    s.push_back({id, i - 1, -1});
    if (i > 0) s[i - 1].next = i;
  }
  const int n = static_cast<int>(s.size());
  if (n == 0) return;
  struct Cand { int32_t rank; int left; int32_t lid, rid, merged; };
  // Lowest rank first; among equal ranks the leftmost pair (what HF tokenizers and llama.cpp do).
  auto worse = [](const Cand& x, const Cand& y) { return x.rank != y.rank ? x.rank > y.rank : x.left > y.left; };
  std::priority_queue<Cand, std::vector<Cand>, decltype(worse)> heap(worse);
  auto consider = [&](int l) {
    if (l < 0 || s[l].next < 0) return;
    const int r = s[l].next;
    auto it = merges_.find(pair_key(s[l].id, s[r].id));
    if (it != merges_.end()) heap.push({it->second.rank, l, s[l].id, s[r].id, it->second.merged});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    Sym& L = s[c.left];
    if (L.id != c.lid || L.next < 0) continue;  // stale: the left symbol changed
    Sym& R = s[L.next];
    if (R.id != c.rid) continue;                // stale: the right neighbour changed
    L.id = c.merged;
    L.next = R.next;
    if (R.next >= 0) s[R.next].prev = c.left;
    R.id = kDead;
    consider(L.prev);
    consider(c.left);
  }
  for (int i = 0; i >= 0; i = s[i].next) out.push_back(s[i].id >= 0 ? s[i].id : unk_id);
}

SpmEncoder::SpmEncoder(TokenIds mergeable, std::vector<float> scores, std::vector<bool> unused,
                       std::array<int32_t, 256> byte_ids)
    : pieces_(std::move(mergeable)), scores_(std::move(scores)), unused_(std::move(unused)), byte_ids_(byte_ids) {}

void SpmEncoder::encode(std::string_view text, int32_t unk_id, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  // Symbols start as one per UTF-8 character (an invalid byte is a character of its own).
  struct Sym { size_t off, len; int prev, next; };
  std::vector<Sym> s;
  for (size_t i = 0; i < text.size();) {
    const size_t len = std::max<size_t>(1, unicode::utf8_valid_len(text, i));
    const int idx = static_cast<int>(s.size());
    s.push_back({i, len, idx - 1, -1});
    if (idx > 0) s[idx - 1].next = idx;
    i += len;
  }
  struct Cand { float score; int left, right; size_t len; };
  // Highest score first; among equal scores the leftmost pair (sentencepiece and llama.cpp).
  auto worse = [](const Cand& x, const Cand& y) { return x.score != y.score ? x.score < y.score : x.left > y.left; };
  std::priority_queue<Cand, std::vector<Cand>, decltype(worse)> heap(worse);
  // Merged pieces that are UNUSED tokens are split back into their parts at the end.
  std::unordered_map<std::string, std::pair<size_t, size_t>> rev_merge;  // piece -> (off, left len)
  auto consider = [&](int l) {
    if (l < 0 || s[l].next < 0) return;
    const int r = s[l].next;
    const std::string piece(text.substr(s[l].off, s[l].len + s[r].len));
    auto it = pieces_.find(piece);
    if (it == pieces_.end()) return;
    const size_t id = static_cast<size_t>(it->second);
    heap.push({id < scores_.size() ? scores_[id] : 0.0f, l, r, piece.size()});
    if (id < unused_.size() && unused_[id]) rev_merge.emplace(piece, std::make_pair(s[l].off, s[l].len));
  };
  for (int i = 0; i + 1 < static_cast<int>(s.size()); ++i) consider(i);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    Sym& L = s[c.left];
    Sym& R = s[c.right];
    if (L.len == 0 || R.len == 0 || L.next != c.right || L.len + R.len != c.len) continue;  // stale
    L.len += R.len;
    R.len = 0;
    L.next = R.next;
    if (R.next >= 0) s[R.next].prev = c.left;
    consider(L.prev);
    consider(c.left);
  }
  for (int i = 0; i >= 0; i = s[i].next) resegment(text.substr(s[i].off, s[i].len), unk_id, rev_merge, out);
}

void SpmEncoder::resegment(std::string_view piece, int32_t unk_id,
                           const std::unordered_map<std::string, std::pair<size_t, size_t>>& rev_merge,
                           std::vector<int32_t>& out) const {
  const std::string key(piece);
  auto it = pieces_.find(key);
  if (it != pieces_.end()) {
    const size_t id = static_cast<size_t>(it->second);
    if (!(id < unused_.size() && unused_[id])) {
      out.push_back(it->second);
      return;
    }
    auto rm = rev_merge.find(key);
    if (rm != rev_merge.end()) {
      const size_t left_len = rm->second.second;
      resegment(piece.substr(0, left_len), unk_id, rev_merge, out);
      resegment(piece.substr(left_len), unk_id, rev_merge, out);
      return;
    }
  }
  // Not a piece: byte fallback, one <0xXX> token per byte; without those tokens, one unk.
  bool all_bytes = true;
  for (unsigned char b : piece) all_bytes = all_bytes && byte_ids_[b] >= 0;
  if (all_bytes) {
    for (unsigned char b : piece) out.push_back(byte_ids_[b]);
  } else if (unk_id >= 0) {
    out.push_back(unk_id);
  }
}

}  // namespace llmasos
