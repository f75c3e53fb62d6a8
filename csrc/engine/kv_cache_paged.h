// The paged KV cache: a pool of fixed-size blocks (16 positions of every layer's keys and values),
// a block table per sequence, and prefix caching (full blocks found again by the hash of their
// tokens chained with everything before them, reference-counted, evicted least recently used).
#pragma once
#include <array>
#include <cstdint>
#include <list>
#include <memory>
#include <unordered_map>
#include <vector>

#include "model/llama.h"

namespace llmasos {

// One sequence's blocks: blocks[i] holds positions [16 i, 16 i + 16). hashes[i] is the chained
// hash of full block i, for the full blocks already offered to the prefix cache.
struct KvBlockTable {
  std::vector<int32_t> blocks;
  std::vector<uint64_t> hashes;
};

struct KvCacheStats {
  int64_t blocks_total = 0;
  int64_t blocks_used = 0;    // referenced by at least one sequence
  int64_t blocks_free = 0;    // blocks_total - blocks_used (includes cached_free)
  int64_t blocks_cached = 0;  // free blocks still holding a cached prefix (evictable)
  int64_t prefix_queries = 0; // full prompt blocks looked up
  int64_t prefix_hits = 0;    // ... and found
  int64_t evictions = 0;
};

class PagedKvCache {
 public:
  static constexpr int64_t kBlockTokens = cpu::kKvBlockTokens;

  // n_blocks blocks for a model of n_layer layers and n_head_kv x head_dim values per position
  // (K and V each), stored as `type` (F32, F16, BF16 or Q8_0).
  PagedKvCache(int64_t n_layer, int64_t n_head_kv, int64_t head_dim, GgmlType type, int64_t n_blocks);
  // Blocks that fit in `bytes`, and the bytes of one block (keys and values of every layer).
  static int64_t blocks_for_bytes(int64_t bytes, int64_t n_layer, int64_t n_head_kv, int64_t head_dim, GgmlType type);
  static int64_t bytes_per_block(int64_t n_layer, int64_t n_head_kv, int64_t head_dim, GgmlType type);

  // The storage as forward_batch addresses it: page = block, [block][layer][kv_page_layer_elems]
  // elements per K and V (the per-layer layout of attention.h).
  KvStore store() const;
  int64_t n_blocks() const { return n_blocks_; }
  int64_t n_free() const { return static_cast<int64_t>(free_.size() + lru_.size()); }
  static int64_t blocks_for_tokens(int64_t n) { return (n + kBlockTokens - 1) / kBlockTokens; }

  // Looks up the longest cached prefix of tokens[0..n) in whole blocks and appends those blocks to
  // the empty table `t` (taking a reference each). Returns the number of tokens covered. The
  // caller reports the lookup with record_prefix once it keeps the result.
  int64_t match_prefix(const int32_t* tokens, int64_t n, KvBlockTable& t);
  void record_prefix(int64_t blocks_queried, int64_t blocks_hit) {
    prefix_queries_ += blocks_queried;
    prefix_hits_ += blocks_hit;
  }
  // Grows `t` to hold n_tokens positions. All or nothing: false (and no change) when the free
  // blocks (evicting cached ones, least recently used first, unless !evict) do not suffice.
  bool reserve(KvBlockTable& t, int64_t n_tokens, bool evict = true);
  // Shrinks `t` to the blocks n_tokens positions need, handing the rest back (a rejected
  // prompt-lookup draft's).
  void truncate(KvBlockTable& t, int64_t n_tokens);
  // Offers the full blocks among the first n_computed positions (tokens[0..n_computed)) to the
  // prefix cache, continuing the table's hash chain.
  void commit(KvBlockTable& t, const int32_t* tokens, int64_t n_computed);
  // Drops the table's references; blocks nobody holds become free (cached ones stay findable
  // until evicted; the tail of a sequence is evicted before its head).
  void release(KvBlockTable& t);
  // dst (empty) shares src's first n_tokens positions: full blocks by reference, the partial last
  // block by copy. False (and no change) when no block is free for the copy.
  bool fork(const KvBlockTable& src, int64_t n_tokens, KvBlockTable& dst);
  // Forgets every cached prefix that no sequence holds.
  void reset_prefix_cache();

  KvCacheStats stats() const;

 private:
  struct Block {
    int32_t ref = 0;
    bool cached = false;  // registered in by_hash_
    uint64_t hash = 0, parent = 0;
    std::array<int32_t, kBlockTokens> tokens{};
    std::list<int32_t>::iterator lru_it;
  };
  static uint64_t chain_hash(uint64_t parent, const int32_t* tokens);
  int32_t take_free();  // a block with ref 0 and no cached content; assumes n_free() > 0
  void unregister(int32_t b);

  int64_t n_layer_, layer_elems_, n_blocks_;  // layer_elems_: cpu::kv_page_layer_elems
  GgmlType type_;
  int64_t block_bytes_;                // of K (and of V) per block
  std::unique_ptr<uint8_t[]> k_, v_;  // left uninitialised: pages become resident as blocks are used
  std::vector<Block> meta_;
  std::vector<int32_t> free_;  // ref 0, not cached (stack; lowest ids on top)
  std::list<int32_t> lru_;     // ref 0, cached: front = least recently used
  std::unordered_map<uint64_t, int32_t> by_hash_;
  int64_t prefix_queries_ = 0, prefix_hits_ = 0, evictions_ = 0;
};

}  // namespace llmasos
