// The two merge algorithms behind the tokenizers: byte-level BPE (pairs merged by merge-list
// rank) and SentencePiece BPE (pairs merged by the score of the piece they form, byte fallback).
// Both run per pre-tokenized piece in O(n log n) with a heap over a linked list of symbols.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace llmasos {

using TokenIds = std::unordered_map<std::string, int32_t>;

class BpeEncoder {
 public:
  // tokens: the vocabulary in byte-level alphabet; merges: "a b" strings, rank = index. Merges
  // whose parts or result are not in the vocabulary are ignored (they can never apply).
  // Throws ModelFormatError for a merge that is not of the form "a b".
  BpeEncoder(const TokenIds& ids, const std::vector<std::string>& merges);
  // Encodes one pre-tokenized piece given as raw bytes; appends ids. A byte whose alphabet
  // character is missing from the vocabulary becomes unk_id (dropped when unk_id < 0).
  void encode_piece(std::string_view bytes, int32_t unk_id, std::vector<int32_t>& out) const;

 private:
  std::array<int32_t, 256> byte_ids_;
  struct Merge { int32_t rank, merged; };
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> merge
};

class SpmEncoder {
 public:
  // mergeable: ids of the pieces merging may form (NORMAL, USER_DEFINED, UNUSED tokens);
  // unused: those among them that are resegmented into their parts afterwards (as sentencepiece
  // does); byte_ids: the <0xXX> tokens (-1 where absent).
  SpmEncoder(TokenIds mergeable, std::vector<float> scores, std::vector<bool> unused,
             std::array<int32_t, 256> byte_ids);
  // Encodes text that already has spaces escaped as U+2581; appends ids.
  void encode(std::string_view text, int32_t unk_id, std::vector<int32_t>& out) const;

 private:
  void resegment(std::string_view piece, int32_t unk_id,
                 const std::unordered_map<std::string, std::pair<size_t, size_t>>& rev_merge,
                 std::vector<int32_t>& out) const;
  TokenIds pieces_;
  std::vector<float> scores_;
  std::vector<bool> unused_;
  std::array<int32_t, 256> byte_ids_;
};

}  // namespace llmasos
