// The llama-family decoder (llama, mistral, smollm2, tinyllama; qwen2 adds Q/K/V biases; qwen3 per-head
// q/k norms; gemma, gemma2, gemma3 the HParams below): weights bound by GGUF tensor name and
// validated against the hyper-parameters, and the forward pass.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/thread_pool.h"
#include "tokenizer/tokenizer.h"

namespace llmasos {

struct ModelOptions {
  int64_t n_ctx = 0;  // 0: the model's context length, capped at kDefaultMaxCtx
  int threads = 0;    // 0: LLMASOS_THREADS or the number of physical cores
  GgmlType kv_type = GgmlType::F16;  // KV cache elements: F16 (default), F32, BF16 or Q8_0
  // Repack quantized weights once into 8-row interleaved blocks (2-3x faster products; private
  // memory). false: every weight is used in place from the mapping, whose pages processes that
  // load the same file share.
  bool repack = true;
};
constexpr int64_t kDefaultMaxCtx = 4096;

struct HParams {
  std::string arch;
  int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_ff = 0;
  int64_t head_dim = 0, n_ctx_train = 0;
  float norm_eps = 1e-5f;
  cpu::RopeParams rope;
  int pooling = 1;  // embeddings' pooling ({arch}.pooling_type): 1 mean (the default), 2 first, 3 last
  // The gemma family: input embeddings times sqrt(n_embd) (embd_scale), GELU (tanh) gating; gemma2
  // and gemma3 RMS-norm the attention and FFN outputs before their residual adds (post_norms) and,
  // on every layer but each swa_pattern-th, attend over the last swa_window positions with RoPE
  // rope_swa; gemma2 soft-caps scores and logits (cap * tanh(x / cap)).
  bool gelu = false, post_norms = false;
  bool qk_norm = false;  // gemma3, qwen3: q and k RMS-normed per head (attn_q_norm, attn_k_norm)
  float embd_scale = 1.0f;
  float attn_scale = 0.0f;  // 0: 1 / sqrt(head_dim)
  float attn_softcap = 0.0f, final_softcap = 0.0f;  // 0: none
  int64_t swa_window = 0, swa_pattern = 0;
  cpu::RopeParams rope_swa;
};

// Keys and values of one sequence: ceil(n_ctx / 16) pages in the paged layout (see KvStore),
// page p holding positions [16 p, 16 p + 16). Memory is left uninitialised (pages become resident
// as the sequence grows).
struct KvCache {
  int64_t n_ctx = 0, n_pages = 0, page_elems = 0;  // page_elems: of K (and of V) per page
  GgmlType type = GgmlType::F16;
  std::unique_ptr<uint8_t[]> k, v;
};

// Where a batch's keys and values live: pages (KV blocks) of cpu::kKvBlockTokens positions, each
// holding every layer: layer l of page p starts at element p * page_stride + l * layer_stride of
// k (and of v), laid out as attention.h says (K transposed per head, V row-wise).
struct KvStore {
  void* k = nullptr;
  void* v = nullptr;
  GgmlType type = GgmlType::F16;
  int64_t n_pages = 0;
  int64_t page_stride = 0;   // elements
  int64_t layer_stride = 0;  // elements
};

// One step over several sequences. Token i is tokens[i] at position pos[i] of sequence seq[i],
// whose page table is seq_pages[seq[i]] (enough pages to hold positions 0..pos[i]). Tokens of one
// sequence appear in increasing position order and its earlier positions are already in the store.
// Logits (n_vocab floats per row) are written for the token indices logit_rows[0..n_logit_rows),
// which must be increasing.
struct ForwardBatch {
  const int32_t* tokens = nullptr;
  const int32_t* seq = nullptr;
  const int64_t* pos = nullptr;
  int64_t n_tokens = 0;
  const int32_t* const* seq_pages = nullptr;
  const int64_t* seq_n_pages = nullptr;
  int64_t n_seqs = 0;
  const int64_t* logit_rows = nullptr;
  int64_t n_logit_rows = 0;
  float* logits = nullptr;  // may be null when hidden is set: the output head is then skipped
  float* hidden = nullptr;  // optional: n_embd floats per logit row, the final-normed hidden state
                            // (what the head multiplies; embeddings are pooled from these)
};

class Model {
 public:
  // Opens, validates and binds a GGUF model; throws ModelFormatError / Error.
  static std::unique_ptr<Model> load(const std::string& path, const ModelOptions& opts);

  const HParams& hparams() const { return hp_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const GgufFile& gguf() const { return *gguf_; }
  int64_t n_ctx() const { return n_ctx_; }
  int threads() const { return pool_->size(); }
  cpu::ThreadPool& pool() { return *pool_; }

  KvCache new_kv_cache() const;
  GgmlType kv_type() const { return kv_type_; }

  // Runs tokens[0..T) at positions pos0..pos0+T-1, appending their keys/values to `kv`.
  // logits (n_vocab floats per row) are written for every position when all_logits, else only
  // for the last one (the output head then runs on one row). Not thread-safe: one call at a time.
  // hidden (optional): n_embd floats per row written, the final-normed hidden states (with
  // logits null, the head is skipped).
  void forward(const int32_t* tokens, int64_t T, int64_t pos0, KvCache& kv, float* logits,
               bool all_logits, float* hidden = nullptr);

  // Runs one batch of tokens from several sequences over a paged store (see ForwardBatch). Every
  // token's result is bit-identical to what forward() gives for it alone: matrix products are per
  // row and attention reads only the token's own sequence. Thread-safe (calls are serialized).
  void forward_batch(const ForwardBatch& b, const KvStore& kv);

 private:
  struct Layer {
    const float* attn_norm = nullptr;
    const float* ffn_norm = nullptr;
    cpu::WeightView wq, wk, wv, wo, w_gate, w_up, w_down;
    // Q|K|V and gate|up stacked into one x8-packed matrix each (data == nullptr when the types or
    // row counts do not allow it; the separate views are then used).
    cpu::WeightView wqkv, w_gate_up;
    const float *bq = nullptr, *bk = nullptr, *bv = nullptr;  // qwen2 biases
    // gemma3 / qwen3: per-head q / k norms (head_dim); gemma2 / gemma3: norms of the attention and
    // FFN outputs (n_embd)
    const float *q_norm = nullptr, *k_norm = nullptr, *post_attn_norm = nullptr, *post_ffn_norm = nullptr;
    bool swa = false;  // sliding-window layer (HParams::swa_window, rope_swa)
  };
  Model() = default;
  void bind_weights();
  // Repacks every weight with an x8 layout once (see quant/packed_x8.h) and drops the file pages
  // it came from, so resident memory holds one copy.
  void pack_weights();
  using Packed = std::vector<cpu::PackedBytes>;  // storage of x8 matrices
  cpu::WeightView pack_one(const cpu::WeightView& w, Packed& store);
  void pack_layer(Layer& L, Packed& store);
  void check_batch(const ForwardBatch& b, const KvStore& kv) const;
  // Tokens [t0, t0 + T) of b; logit rows [l0, l1) of b fall in that range.
  void forward_rows(const ForwardBatch& b, int64_t t0, int64_t T, int64_t l0, int64_t l1,
                    const KvStore& kv);

  std::unique_ptr<GgufFile> gguf_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<cpu::ThreadPool> pool_;
  HParams hp_;
  int64_t n_ctx_ = 0;
  GgmlType kv_type_ = GgmlType::F16;
  cpu::WeightView tok_embd_, output_;
  const float* output_norm_ = nullptr;
  std::vector<Layer> layers_;
  std::vector<float> rope_freqs_;
  std::vector<Packed> packed_;  // x8 weights: one slot per layer, then the output head

  // Scratch reused across calls (sized for one chunk).
  std::vector<float> x_, xn_, q_, k_, v_, att_, gate_, up_, tmp_, att_scores_, rope_cs_, rope_cs_swa_, qkv_;
  std::vector<const int32_t*> tok_pages_;
  cpu::MatmulScratch mm_scratch_;
  std::mutex forward_mu_;  // forward / forward_batch share the scratch above
};

}  // namespace llmasos
