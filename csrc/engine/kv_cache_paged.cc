// PagedKvCache: block pool with a free stack, an LRU list of cached free blocks and a hash map
// from chained block hashes to blocks. A hit is confirmed against the block's stored tokens and
// parent hash, so a 64-bit collision can never hand a sequence someone else's keys.
#include "engine/kv_cache_paged.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "io/checked.h"
#include "llmasos/errors.hpp"

namespace llmasos {

PagedKvCache::PagedKvCache(int64_t n_layer, int64_t n_head_kv, int64_t head_dim, GgmlType type, int64_t n_blocks)
    : n_layer_(n_layer), n_blocks_(n_blocks), type_(type) {
  if (n_layer <= 0 || n_head_kv <= 0 || head_dim <= 0) throw InvalidArgumentError("paged KV cache: bad model shape");
  if (!cpu::kv_type_supported(type)) throw InvalidArgumentError("paged KV cache: type must be F32, F16, BF16 or Q8_0");
  layer_elems_ = cpu::kv_page_layer_elems(cpu::AttentionShape{n_head_kv, n_head_kv, head_dim}, type);
  if (n_blocks <= 0 || n_blocks > (int64_t(1) << 30))
    throw InvalidArgumentError("paged KV cache: the pool must hold between 1 and 2^30 blocks, got " +
                               std::to_string(n_blocks));
  block_bytes_ = bytes_per_block(n_layer, n_head_kv, head_dim, type) / 2;
  const uint64_t bytes = checked_mul(static_cast<uint64_t>(n_blocks), static_cast<uint64_t>(block_bytes_), "kv pool");
  try {
    k_.reset(new uint8_t[bytes]);
    v_.reset(new uint8_t[bytes]);
    meta_.resize(static_cast<size_t>(n_blocks));
  } catch (const std::bad_alloc&) {
    throw Error("not enough memory for a KV pool of " + std::to_string(n_blocks) + " blocks");
  }
  free_.reserve(static_cast<size_t>(n_blocks));
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

int64_t PagedKvCache::bytes_per_block(int64_t n_layer, int64_t n_head_kv, int64_t head_dim, GgmlType type) {
  const cpu::AttentionShape s{n_head_kv, n_head_kv, head_dim};
  return 2 * n_layer * cpu::kv_page_layer_elems(s, type) * static_cast<int64_t>(cpu::kv_type_size(type));
}

int64_t PagedKvCache::blocks_for_bytes(int64_t bytes, int64_t n_layer, int64_t n_head_kv, int64_t head_dim,
                                       GgmlType type) {
  return bytes / bytes_per_block(n_layer, n_head_kv, head_dim, type);
}

KvStore PagedKvCache::store() const {
  KvStore s;
  s.k = k_.get();
  s.v = v_.get();
  s.type = type_;
  s.n_pages = n_blocks_;
  s.layer_stride = layer_elems_;
  s.page_stride = n_layer_ * s.layer_stride;
  return s;
}

uint64_t PagedKvCache::chain_hash(uint64_t parent, const int32_t* tokens) {
  // splitmix64 finaliser over the parent hash and each token in turn.
  auto mix = [](uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  uint64_t h = mix(parent + 0x9e3779b97f4a7c15ULL);
  for (int64_t i = 0; i < kBlockTokens; ++i)
    h = mix(h ^ (static_cast<uint64_t>(static_cast<uint32_t>(tokens[i])) + 0x9e3779b97f4a7c15ULL * (i + 1)));
  return h;
}

int64_t PagedKvCache::match_prefix(const int32_t* tokens, int64_t n, KvBlockTable& t) {
  if (!t.blocks.empty()) throw InvalidArgumentError("match_prefix needs an empty block table");
  const int64_t full = n / kBlockTokens;
  uint64_t parent = 0;
  int64_t i = 0;
  for (; i < full; ++i) {
    const int32_t* tok = tokens + i * kBlockTokens;
    const uint64_t h = chain_hash(parent, tok);
    auto it = by_hash_.find(h);
    if (it == by_hash_.end()) break;
    Block& b = meta_[static_cast<size_t>(it->second)];
    if (b.parent != parent || !std::equal(b.tokens.begin(), b.tokens.end(), tok)) break;
    if (b.ref++ == 0) lru_.erase(b.lru_it);
    t.blocks.push_back(it->second);
    t.hashes.push_back(h);
    parent = h;
  }
  return i * kBlockTokens;
}

void PagedKvCache::unregister(int32_t b) {
  Block& m = meta_[static_cast<size_t>(b)];
  if (!m.cached) return;
  auto it = by_hash_.find(m.hash);
  if (it != by_hash_.end() && it->second == b) by_hash_.erase(it);
  m.cached = false;
}

int32_t PagedKvCache::take_free() {
  if (!free_.empty()) {
    int32_t b = free_.back();
    free_.pop_back();
    return b;
  }
  int32_t b = lru_.front();  // evict the least recently used cached block
  lru_.pop_front();
  unregister(b);
  ++evictions_;
  return b;
}

bool PagedKvCache::reserve(KvBlockTable& t, int64_t n_tokens, bool evict) {
  const int64_t need = blocks_for_tokens(n_tokens) - static_cast<int64_t>(t.blocks.size());
  if (need <= 0) return true;
  if (need > (evict ? n_free() : static_cast<int64_t>(free_.size()))) return false;
  for (int64_t i = 0; i < need; ++i) {
    int32_t b = take_free();
    meta_[static_cast<size_t>(b)].ref = 1;
    t.blocks.push_back(b);
  }
  return true;
}

void PagedKvCache::commit(KvBlockTable& t, const int32_t* tokens, int64_t n_computed) {
  const int64_t full = std::min(n_computed / kBlockTokens, static_cast<int64_t>(t.blocks.size()));
  for (int64_t i = static_cast<int64_t>(t.hashes.size()); i < full; ++i) {
    const uint64_t parent = i ? t.hashes[static_cast<size_t>(i - 1)] : 0;
    const int32_t* tok = tokens + i * kBlockTokens;
    const uint64_t h = chain_hash(parent, tok);
    t.hashes.push_back(h);
    const int32_t id = t.blocks[static_cast<size_t>(i)];
    Block& b = meta_[static_cast<size_t>(id)];
    if (b.cached || by_hash_.count(h)) continue;  // an equal block is cached already
    b.cached = true;
    b.hash = h;
    b.parent = parent;
    std::copy(tok, tok + kBlockTokens, b.tokens.begin());
    by_hash_.emplace(h, id);
  }
}

void PagedKvCache::truncate(KvBlockTable& t, int64_t n_tokens) {
  const size_t keep = static_cast<size_t>(blocks_for_tokens(n_tokens));
  while (t.blocks.size() > keep) {
    Block& b = meta_[static_cast<size_t>(t.blocks.back())];
    if (--b.ref == 0) {
      if (b.cached) b.lru_it = lru_.insert(lru_.end(), t.blocks.back());
      else free_.push_back(t.blocks.back());
    }
    t.blocks.pop_back();
  }
  if (t.hashes.size() > keep) t.hashes.resize(keep);
}

void PagedKvCache::release(KvBlockTable& t) {
  // Tail first, so the LRU order evicts a sequence's last blocks before its (more shareable) head.
  for (auto it = t.blocks.rbegin(); it != t.blocks.rend(); ++it) {
    Block& b = meta_[static_cast<size_t>(*it)];
    if (--b.ref > 0) continue;
    if (b.cached) b.lru_it = lru_.insert(lru_.end(), *it);
    else free_.push_back(*it);
  }
  t.blocks.clear();
  t.hashes.clear();
}

bool PagedKvCache::fork(const KvBlockTable& src, int64_t n_tokens, KvBlockTable& dst) {
  if (!dst.blocks.empty()) throw InvalidArgumentError("fork needs an empty block table");
  if (n_tokens < 0 || blocks_for_tokens(n_tokens) > static_cast<int64_t>(src.blocks.size()))
    throw InvalidArgumentError("fork: the source holds fewer positions");
  const int64_t full = n_tokens / kBlockTokens;
  const bool partial = n_tokens % kBlockTokens != 0;
  if (partial && n_free() == 0) return false;
  for (int64_t i = 0; i < full; ++i) {
    const int32_t b = src.blocks[static_cast<size_t>(i)];
    ++meta_[static_cast<size_t>(b)].ref;
    dst.blocks.push_back(b);
  }
  dst.hashes.assign(src.hashes.begin(), src.hashes.begin() + std::min<int64_t>(full, src.hashes.size()));
  if (partial) {
    const int32_t from = src.blocks[static_cast<size_t>(full)];
    const int32_t to = take_free();
    meta_[static_cast<size_t>(to)].ref = 1;
    const size_t n = static_cast<size_t>(block_bytes_);
    std::memcpy(k_.get() + to * n, k_.get() + from * n, n);
    std::memcpy(v_.get() + to * n, v_.get() + from * n, n);
    dst.blocks.push_back(to);
  }
  return true;
}

void PagedKvCache::reset_prefix_cache() {
  for (int32_t b : lru_) {
    unregister(b);
    free_.push_back(b);
  }
  lru_.clear();
  // Blocks still held keep their content but are no longer findable.
  for (size_t b = 0; b < meta_.size(); ++b) unregister(static_cast<int32_t>(b));
  std::sort(free_.begin(), free_.end(), std::greater<int32_t>());
}

KvCacheStats PagedKvCache::stats() const {
  KvCacheStats s;
  s.blocks_total = n_blocks_;
  s.blocks_free = n_free();
  s.blocks_used = n_blocks_ - s.blocks_free;
  s.blocks_cached = static_cast<int64_t>(lru_.size());
  s.prefix_queries = prefix_queries_;
  s.prefix_hits = prefix_hits_;
  s.evictions = evictions_;
  return s;
}

}  // namespace llmasos
