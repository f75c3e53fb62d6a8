// Loading (hyper-parameters, tensor binding and validation) and the forward pass of the
// llama-family decoder. Shapes follow ggml: a weight with ne = [cols, rows] maps cols -> rows.
#include "model/llama.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <exception>
#include <mutex>
#include <string>

#include "io/checked.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/kernel_table.h"
#include "llmasos/errors.hpp"

namespace llmasos {
namespace {

constexpr int64_t kChunk = 128;  // tokens per forward chunk (bounds scratch memory)

int64_t positive_key(const GgufFile& f, const std::string& key) {
  int64_t v = f.require_int(key);
  if (v <= 0) throw ModelFormatError("'" + key + "' must be positive, got " + std::to_string(v));
  if (v > (int64_t(1) << 31)) throw ModelFormatError("'" + key + "' is implausibly large");
  return v;
}

std::string shape_str(const GgufTensorInfo& t) {
  std::string s = "[";
  for (uint32_t i = 0; i < t.n_dims; ++i) s += (i ? ", " : "") + std::to_string(t.ne[i]);
  return s + "]";
}

int threads_from_env() {
  const char* e = std::getenv("LLMASOS_THREADS");
  if (!e || !*e) return 0;
  char* end = nullptr;
  long v = std::strtol(e, &end, 10);
  if (*end != '\0' || v < 1 || v > 1024)
    throw InvalidArgumentError(std::string("LLMASOS_THREADS must be an integer in 1..1024, got '") + e + "'");
  return static_cast<int>(v);
}

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& path, const ModelOptions& opts) {
  std::unique_ptr<Model> m(new Model());
  m->gguf_ = GgufFile::open(path);
  const GgufFile& f = *m->gguf_;
  HParams& hp = m->hp_;
  hp.arch = f.require_string("general.architecture");
  static const char* const kArchs[] = {"llama", "qwen2", "qwen3", "gemma", "gemma2", "gemma3"};
  if (std::find(std::begin(kArchs), std::end(kArchs), hp.arch) == std::end(kArchs))
    throw ModelFormatError("unsupported architecture '" + hp.arch +
                           "' (supported: llama, qwen2, qwen3, gemma, gemma2, gemma3)");
  const bool gemma = hp.arch.compare(0, 5, "gemma") == 0;
  hp.gelu = gemma;
  hp.post_norms = hp.arch == "gemma2" || hp.arch == "gemma3";
  hp.qk_norm = hp.arch == "gemma3" || hp.arch == "qwen3";
  const std::string a = hp.arch + ".";
  hp.n_layer = positive_key(f, a + "block_count");
  hp.n_embd = positive_key(f, a + "embedding_length");
  hp.n_ff = positive_key(f, a + "feed_forward_length");
  hp.n_head = positive_key(f, a + "attention.head_count");
  hp.n_head_kv = f.find(a + "attention.head_count_kv") ? positive_key(f, a + "attention.head_count_kv")
                                                       : hp.n_head;
  hp.n_ctx_train = positive_key(f, a + "context_length");
  if (hp.n_head % hp.n_head_kv != 0)
    throw ModelFormatError("attention.head_count (" + std::to_string(hp.n_head) +
                           ") is not a multiple of attention.head_count_kv (" +
                           std::to_string(hp.n_head_kv) + ")");
  if (hp.n_embd % hp.n_head != 0 && !f.find(a + "attention.key_length"))
    throw ModelFormatError("embedding_length is not a multiple of attention.head_count");
  // Heads are n_embd / n_head wide unless the file says otherwise (Gemma 3: 4 heads of 256 over a
  // 640-wide residual); keys and values share one width (the KV pages' layout).
  hp.head_dim = f.find(a + "attention.key_length") ? positive_key(f, a + "attention.key_length")
                                                    : hp.n_embd / hp.n_head;
  if (f.find(a + "attention.value_length") && positive_key(f, a + "attention.value_length") != hp.head_dim)
    throw ModelFormatError("attention.value_length != attention.key_length is not supported");
  if (hp.head_dim > 1024) throw ModelFormatError("attention.key_length is implausibly large");
  double eps = f.get_float(a + "attention.layer_norm_rms_epsilon", 1e-5);
  if (!(eps > 0.0 && eps < 1.0)) throw ModelFormatError("layer_norm_rms_epsilon must be in (0, 1)");
  hp.norm_eps = static_cast<float>(eps);
  double base = f.get_float(a + "rope.freq_base", 10000.0);
  if (!(base > 1.0 && std::isfinite(base))) throw ModelFormatError("rope.freq_base must be > 1");
  hp.rope.freq_base = static_cast<float>(base);
  hp.rope.rope_dim = f.get_int(a + "rope.dimension_count", hp.head_dim);
  if (hp.rope.rope_dim <= 0 || hp.rope.rope_dim > hp.head_dim || hp.rope.rope_dim % 2 != 0)
    throw ModelFormatError("rope.dimension_count must be even and in 1..head_dim (" +
                           std::to_string(hp.head_dim) + ")");
  const int64_t pooling = f.get_int(a + "pooling_type", 1);  // other kinds (none, rank): mean
  hp.pooling = pooling >= 1 && pooling <= 3 ? static_cast<int>(pooling) : 1;
  hp.rope.style = hp.arch == "llama" ? cpu::RopeStyle::Interleaved : cpu::RopeStyle::Neox;
  // Linear RoPE scaling (positions divided by the factor); other kinds keep the plain angles.
  if (f.get_string(a + "rope.scaling.type", "none") == "linear") {
    const double factor = f.get_float(a + "rope.scaling.factor", 1.0);
    if (!(factor >= 1.0 && factor < 1e6)) throw ModelFormatError("rope.scaling.factor must be >= 1");
    hp.rope.freq_scale = static_cast<float>(1.0 / factor);
  }
  hp.rope_swa = hp.rope;  // sliding-window layers: the same RoPE unless the model says otherwise
  if (gemma) {
    hp.embd_scale = std::sqrt(static_cast<float>(hp.n_embd));
    // query_pre_attn_scalar is not in the file: head_dim for every size but the 27B ones (Gemma 2:
    // 46 layers, Gemma 3: 62), whose queries are scaled by n_embd / n_head, as llama.cpp reads them.
    const bool big = (hp.arch == "gemma2" && hp.n_layer == 46) || (hp.arch == "gemma3" && hp.n_layer == 62);
    const double qscale = big ? static_cast<double>(hp.n_embd) / hp.n_head : hp.head_dim;
    hp.attn_scale = static_cast<float>(1.0 / std::sqrt(qscale));
  }
  if (hp.arch == "gemma2") {
    // Every other layer (the even ones) sees the last attention.sliding_window positions; scores
    // and logits are soft-capped, cap * tanh(x / cap). Files converted before these keys existed
    // get Gemma 2's values, as llama.cpp gives them: a 4096 window, caps 50 and 30 (0: none).
    hp.swa_window = f.find(a + "attention.sliding_window") ? positive_key(f, a + "attention.sliding_window") : 4096;
    hp.swa_pattern = 2;
    auto cap = [&](const std::string& key, double def) {
      const double c = f.get_float(a + key, def);
      if (!(c == 0.0 || (c >= 1e-3 && c < 1e30)))
        throw ModelFormatError("'" + a + key + "' must be 0 (none) or in [0.001, 1e30)");
      return static_cast<float>(c);
    };
    hp.attn_softcap = cap("attn_logit_softcapping", 50.0);
    hp.final_softcap = cap("final_logit_softcapping", 30.0);
  }
  if (hp.arch == "gemma3") {
    // Every 6th layer attends globally with the file's RoPE; the others see the last
    // attention.sliding_window positions, with base 10000 and no scaling.
    hp.swa_window = positive_key(f, a + "attention.sliding_window");
    hp.swa_pattern = 6;
    hp.rope_swa.freq_base = 10000.0f;
    hp.rope_swa.freq_scale = 1.0f;
  }

  m->tokenizer_ = std::make_unique<Tokenizer>(TokenizerSpec::from_gguf(f));
  const GgufTensorInfo* emb = f.tensor("token_embd.weight");
  if (!emb) throw ModelFormatError("missing tensor 'token_embd.weight'");
  hp.n_vocab = emb->ne[1];
  if (m->tokenizer_->n_vocab() > hp.n_vocab)
    throw ModelFormatError("tokenizer has " + std::to_string(m->tokenizer_->n_vocab()) +
                           " tokens but token_embd.weight has only " + std::to_string(hp.n_vocab) + " rows");
  if (f.find(a + "vocab_size") && f.get_int(a + "vocab_size", 0) != hp.n_vocab)
    throw ModelFormatError(a + "vocab_size does not match token_embd.weight");

  m->bind_weights();
  m->gguf_->release_arrays(4096);  // the tokenizer holds its own copy of the vocabulary
  m->gguf_->drop_metadata_pages();

  int64_t n_ctx = opts.n_ctx > 0 ? opts.n_ctx : std::min(hp.n_ctx_train, kDefaultMaxCtx);
  if (opts.n_ctx < 0) throw InvalidArgumentError("n_ctx must be positive");
  if (n_ctx > (int64_t(1) << 24)) throw InvalidArgumentError("n_ctx is too large");
  m->n_ctx_ = n_ctx;
  if (!cpu::kv_type_supported(opts.kv_type))
    throw InvalidArgumentError("the KV cache type must be F32, F16, BF16 or Q8_0");
  m->kv_type_ = opts.kv_type;
  int threads = opts.threads > 0 ? opts.threads : threads_from_env();
  if (opts.threads < 0) throw InvalidArgumentError("threads must be positive");
  if (threads <= 0) threads = cpu::physical_cores();
  m->pool_ = std::make_unique<cpu::ThreadPool>(threads);
  if (opts.repack) m->pack_weights();
  return m;
}

void Model::bind_weights() {
  const GgufFile& f = *gguf_;
  const HParams& hp = hp_;
  // A 2-D weight mapping `cols` inputs to `rows` outputs.
  auto matrix = [&](const std::string& name, int64_t cols, int64_t rows, bool required) {
    cpu::WeightView w;
    const GgufTensorInfo* t = f.tensor(name);
    if (!t) {
      if (required) throw ModelFormatError("missing tensor '" + name + "'");
      return w;
    }
    if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != 1 || t->ne[3] != 1)
      throw ModelFormatError("tensor '" + name + "' has shape " + shape_str(*t) + ", expected [" +
                             std::to_string(cols) + ", " + std::to_string(rows) + "]");
    const TypeTraits* tr = type_traits(t->type);
    if (!tr || !cpu::kernels().vec_dot[static_cast<uint32_t>(t->type)])
      throw ModelFormatError("tensor '" + name + "' has a type llmasos cannot compute with");
    w.type = t->type;
    w.data = t->data;
    w.rows = rows;
    w.cols = cols;
    w.row_stride = row_bytes(*tr, cols);
    return w;
  };
  // A 1-D vector of n floats (norm weights, biases), copied out as F32.
  auto vec = [&](const std::string& name, int64_t n, bool required) -> const float* {
    const GgufTensorInfo* t = f.tensor(name);
    if (!t) {
      if (required) throw ModelFormatError("missing tensor '" + name + "'");
      return nullptr;
    }
    if (t->ne[0] != n || t->n_elements() != n)
      throw ModelFormatError("tensor '" + name + "' has shape " + shape_str(*t) + ", expected [" +
                             std::to_string(n) + "]");
    if (t->type != GgmlType::F32)
      throw ModelFormatError("tensor '" + name + "' must be F32");
    return reinterpret_cast<const float*>(t->data);
  };

  tok_embd_ = matrix("token_embd.weight", hp.n_embd, hp.n_vocab, true);
  output_norm_ = vec("output_norm.weight", hp.n_embd, true);
  output_ = matrix("output.weight", hp.n_embd, hp.n_vocab, false);
  if (!output_.data) output_ = tok_embd_;  // tied embeddings
  const int64_t q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
  layers_.resize(static_cast<size_t>(hp.n_layer));
  for (int64_t i = 0; i < hp.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    Layer& L = layers_[static_cast<size_t>(i)];
    L.attn_norm = vec(p + "attn_norm.weight", hp.n_embd, true);
    L.ffn_norm = vec(p + "ffn_norm.weight", hp.n_embd, true);
    L.wq = matrix(p + "attn_q.weight", hp.n_embd, q_dim, true);
    L.wk = matrix(p + "attn_k.weight", hp.n_embd, kv_dim, true);
    L.wv = matrix(p + "attn_v.weight", hp.n_embd, kv_dim, true);
    L.wo = matrix(p + "attn_output.weight", q_dim, hp.n_embd, true);
    L.w_gate = matrix(p + "ffn_gate.weight", hp.n_embd, hp.n_ff, true);
    L.w_up = matrix(p + "ffn_up.weight", hp.n_embd, hp.n_ff, true);
    L.w_down = matrix(p + "ffn_down.weight", hp.n_ff, hp.n_embd, true);
    L.swa = hp.swa_pattern > 0 && (i + 1) % hp.swa_pattern != 0;
    bool bias = hp.arch == "qwen2";
    L.bq = vec(p + "attn_q.bias", q_dim, bias);
    L.bk = vec(p + "attn_k.bias", kv_dim, bias);
    L.bv = vec(p + "attn_v.bias", kv_dim, bias);
    if (hp.qk_norm) {
      L.q_norm = vec(p + "attn_q_norm.weight", hp.head_dim, true);
      L.k_norm = vec(p + "attn_k_norm.weight", hp.head_dim, true);
    }
    if (hp.post_norms) {
      L.post_attn_norm = vec(p + "post_attention_norm.weight", hp.n_embd, true);
      L.post_ffn_norm = vec(p + "post_ffw_norm.weight", hp.n_embd, true);

    }
  }
  if (const GgufTensorInfo* rf = f.tensor("rope_freqs.weight")) {
    const float* p = vec("rope_freqs.weight", hp.rope.rope_dim / 2, true);
    for (int64_t i = 0; i < hp.rope.rope_dim / 2; ++i)
      if (!(p[i] > 0.0f) || !std::isfinite(p[i])) throw ModelFormatError("rope_freqs.weight must be positive");
    rope_freqs_.assign(p, p + rf->ne[0]);
    hp_.rope.freq_factors = rope_freqs_.data();
  }
}

cpu::WeightView Model::pack_one(const cpu::WeightView& w, Packed& store) {
  if (!w.data || !cpu::can_pack_x8(w)) return w;
  store.emplace_back();
  const cpu::WeightView p = cpu::pack_x8(w, store.back());
  gguf_->drop_pages(w.data, w.row_stride * static_cast<uint64_t>(w.rows));
  return p;
}

void Model::pack_layer(Layer& L, Packed& store) {
  auto stacked = [&](std::initializer_list<cpu::WeightView*> parts, cpu::WeightView& out) {
    std::vector<cpu::WeightView> v;
    for (cpu::WeightView* p : parts) v.push_back(*p);
    store.emplace_back();
    if (!cpu::pack_x8_stacked(v.data(), static_cast<int>(v.size()), store.back(), out)) {
      store.pop_back();
      for (cpu::WeightView* p : parts) *p = pack_one(*p, store);  // each alone, where it can be
      return;
    }
    for (cpu::WeightView* p : parts) {
      gguf_->drop_pages(p->data, p->row_stride * static_cast<uint64_t>(p->rows));
      *p = cpu::WeightView{};  // only the stacked view is used from now on
    }
  };
  stacked({&L.wq, &L.wk, &L.wv}, L.wqkv);
  stacked({&L.w_gate, &L.w_up}, L.w_gate_up);
  L.wo = pack_one(L.wo, store);
  L.w_down = pack_one(L.w_down, store);
}

void Model::pack_weights() {
  // One pool item per layer and one for the output head, each with its own storage slot.
  const int n = static_cast<int>(layers_.size());
  packed_.clear();
  packed_.resize(static_cast<size_t>(n) + 1);
  const bool tied = output_.data == tok_embd_.data;
  std::mutex err_mu;
  std::exception_ptr err;
  pool_->run_items(n + 1, [&](int i) {
    try {
      if (i < n)
        pack_layer(layers_[static_cast<size_t>(i)], packed_[static_cast<size_t>(i)]);
      else
        output_ = pack_one(output_, packed_[static_cast<size_t>(n)]);
    } catch (...) {
      std::lock_guard<std::mutex> lock(err_mu);
      if (!err) err = std::current_exception();
    }
  });
  if (err) std::rethrow_exception(err);
  if (tied) tok_embd_ = output_;  // the embedding lookup reads rows back from the packing
}

KvCache Model::new_kv_cache() const {
  KvCache kv;
  kv.n_ctx = n_ctx_;
  kv.type = kv_type_;
  kv.n_pages = (n_ctx_ + cpu::kKvBlockTokens - 1) / cpu::kKvBlockTokens;
  const cpu::AttentionShape as{hp_.n_head, hp_.n_head_kv, hp_.head_dim};
  kv.page_elems = hp_.n_layer * cpu::kv_page_layer_elems(as, kv.type);
  const uint64_t bytes = checked_mul(
      checked_mul(static_cast<uint64_t>(kv.n_pages), static_cast<uint64_t>(kv.page_elems), "kv cache"),
      cpu::kv_type_size(kv.type), "kv cache");
  try {
    kv.k.reset(new uint8_t[bytes]);
    kv.v.reset(new uint8_t[bytes]);
  } catch (const std::bad_alloc&) {
    throw Error("not enough memory for a KV cache of " + std::to_string(n_ctx_) + " tokens");
  }
  return kv;
}

void Model::forward(const int32_t* tokens, int64_t T, int64_t pos0, KvCache& kv, float* logits,
                    bool all_logits, float* hidden) {
  if (T <= 0) throw InvalidArgumentError("forward needs at least one token");
  if (pos0 < 0 || pos0 + T > kv.n_ctx)
    throw InvalidArgumentError("sequence of " + std::to_string(pos0 + T) +
                               " tokens exceeds the context size " + std::to_string(kv.n_ctx));
  const cpu::AttentionShape as{hp_.n_head, hp_.n_head_kv, hp_.head_dim};
  if (kv.n_ctx > n_ctx_ || kv.type != kv_type_ || kv.page_elems != hp_.n_layer * cpu::kv_page_layer_elems(as, kv.type))
    throw InvalidArgumentError("the KV cache does not belong to this model");
  // One sequence whose page table is the identity: page p holds positions [16 p, 16 p + 16).
  KvStore store;
  store.k = kv.k.get();
  store.v = kv.v.get();
  store.type = kv.type;
  store.n_pages = kv.n_pages;
  store.page_stride = kv.page_elems;
  store.layer_stride = cpu::kv_page_layer_elems(as, kv.type);
  std::vector<int32_t> page_ids(static_cast<size_t>(kv.n_pages));
  for (int64_t p = 0; p < kv.n_pages; ++p) page_ids[static_cast<size_t>(p)] = static_cast<int32_t>(p);
  std::vector<int32_t> seq(static_cast<size_t>(T), 0);
  std::vector<int64_t> pos(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) pos[static_cast<size_t>(t)] = pos0 + t;
  std::vector<int64_t> rows;
  if (all_logits) {
    rows.resize(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) rows[static_cast<size_t>(t)] = t;
  } else {
    rows.push_back(T - 1);
  }
  const int32_t* pages = page_ids.data();
  const int64_t n_pages = kv.n_pages;
  ForwardBatch b;
  b.tokens = tokens;
  b.seq = seq.data();
  b.pos = pos.data();
  b.n_tokens = T;
  b.seq_pages = &pages;
  b.seq_n_pages = &n_pages;
  b.n_seqs = 1;
  const bool out = logits || hidden;
  b.logit_rows = out ? rows.data() : nullptr;
  b.n_logit_rows = out ? static_cast<int64_t>(rows.size()) : 0;
  b.logits = logits;
  b.hidden = hidden;
  forward_batch(b, store);
}

void Model::check_batch(const ForwardBatch& b, const KvStore& kv) const {
  auto bad = [](const std::string& what) { throw InvalidArgumentError("forward_batch: " + what); };
  if (b.n_tokens <= 0) throw InvalidArgumentError("forward needs at least one token");
  if (!b.tokens || !b.seq || !b.pos || b.n_seqs <= 0 || !b.seq_pages || !b.seq_n_pages) bad("missing arrays");
  if (!kv.k || !kv.v || kv.n_pages <= 0) bad("empty KV store");
  const cpu::AttentionShape as{hp_.n_head, hp_.n_head_kv, hp_.head_dim};
  if (kv.type != kv_type_ || kv.layer_stride < cpu::kv_page_layer_elems(as, kv.type) ||
      kv.page_stride < hp_.n_layer * kv.layer_stride)
    bad("the KV store does not fit this model");
  for (int64_t s = 0; s < b.n_seqs; ++s) {
    if (b.seq_n_pages[s] < 0 || (b.seq_n_pages[s] > 0 && !b.seq_pages[s])) bad("bad page table");
    for (int64_t p = 0; p < b.seq_n_pages[s]; ++p)
      if (b.seq_pages[s][p] < 0 || b.seq_pages[s][p] >= kv.n_pages) bad("page id out of range");
  }
  for (int64_t t = 0; t < b.n_tokens; ++t) {
    if (b.tokens[t] < 0 || b.tokens[t] >= hp_.n_vocab)
      throw InvalidArgumentError("token id " + std::to_string(b.tokens[t]) + " is out of range [0, " +
                                 std::to_string(hp_.n_vocab) + ")");
    const int32_t s = b.seq[t];
    if (s < 0 || s >= b.n_seqs) bad("sequence index out of range");
    if (b.pos[t] < 0 || b.pos[t] >= n_ctx_)
      throw InvalidArgumentError("position " + std::to_string(b.pos[t]) + " exceeds the context size " +
                                 std::to_string(n_ctx_));
    if (b.pos[t] >= b.seq_n_pages[s] * cpu::kKvBlockTokens) bad("a position has no page");
  }
  if (b.n_logit_rows < 0 || (b.n_logit_rows > 0 && (!b.logit_rows || (!b.logits && !b.hidden))))
    bad("bad logit rows");
  for (int64_t j = 0; j < b.n_logit_rows; ++j)
    if (b.logit_rows[j] < 0 || b.logit_rows[j] >= b.n_tokens || (j > 0 && b.logit_rows[j] <= b.logit_rows[j - 1]))
      bad("logit rows must be increasing token indices");
}

void Model::forward_batch(const ForwardBatch& b, const KvStore& kv) {
  check_batch(b, kv);
  std::lock_guard<std::mutex> lock(forward_mu_);
  // Chunks of at most kChunk tokens bound the scratch; a later chunk reads the keys/values the
  // earlier ones wrote, exactly as a single-sequence prefill in chunks does.
  int64_t l = 0;
  for (int64_t c = 0; c < b.n_tokens; c += kChunk) {
    const int64_t n = std::min(kChunk, b.n_tokens - c);
    int64_t l1 = l;
    while (l1 < b.n_logit_rows && b.logit_rows[l1] < c + n) ++l1;
    forward_rows(b, c, n, l, l1, kv);
    l = l1;
  }
}

namespace {

// fn(t0, t1) over token rows [0, T): across the pool when there are enough rows to pay for a job
// (a wake-up costs about as much as a few rows' RoPE and KV stores).
void per_tokens(cpu::ThreadPool& pool, int64_t T, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool.size() > 1 && T >= 4)
    pool.parallel_for(T, 1, fn);
  else
    fn(0, T);
}

}  // namespace

void Model::forward_rows(const ForwardBatch& b, int64_t t0, int64_t T, int64_t l0, int64_t l1,
                         const KvStore& kv) {
  const cpu::KernelTable& kt = cpu::kernels();
  const HParams& hp = hp_;
  const int64_t E = hp.n_embd, q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
  const int64_t rd = hp.rope.rope_dim;
  auto grow = [](std::vector<float>& v, int64_t n) { if (static_cast<int64_t>(v.size()) < n) v.resize(n); };
  grow(x_, T * E); grow(xn_, T * E); grow(q_, T * q_dim); grow(k_, T * kv_dim); grow(v_, T * kv_dim);
  grow(att_, T * q_dim); grow(gate_, T * hp.n_ff); grow(up_, T * hp.n_ff); grow(tmp_, T * E);
  grow(rope_cs_, T * 2 * rd);  // per token: rope_cos_sin's 2 rope_dim factors
  if (hp.swa_window) grow(rope_cs_swa_, T * 2 * rd);
  tok_pages_.resize(static_cast<size_t>(T));

  const int32_t* tokens = b.tokens + t0;
  const int64_t* pos = b.pos + t0;
  for (int64_t t = 0; t < T; ++t) {
    cpu::dequantize_row(tok_embd_, tokens[t], x_.data() + t * E);
    if (hp.embd_scale != 1.0f) kt.scale(x_.data() + t * E, hp.embd_scale, E);
    cpu::rope_cos_sin(pos[t], hp.rope, rope_cs_.data() + t * 2 * rd);
    if (hp.swa_window) cpu::rope_cos_sin(pos[t], hp.rope_swa, rope_cs_swa_.data() + t * 2 * rd);
    tok_pages_[static_cast<size_t>(t)] = b.seq_pages[b.seq[t0 + t]];
  }

  // The FFN gate: SiLU, or GELU (tanh form) for the gemma family.
  const auto act = hp.gelu ? kt.gelu_mul : kt.silu_mul;
  // A sublayer's output (tmp_) joins the residual stream x_ in the next product's activation pass,
  // token by token, just before that row is normed: x += tmp, after gemma2 / gemma3's RMS norm of
  // tmp (post_w). Run apart, the add was a serial pass on the calling thread while the others
  // waited (about 1.5% of a 16-sequence step). Row t of tmp_ belongs to the pending sublayer:
  // the previous layer's FFN at a layer's start (none at layer 0), the last layer's after the loop.
  auto residual = [&](const float* post_w, int64_t t) {
    float* r = tmp_.data() + t * E;
    if (post_w) kt.rmsnorm(r, r, post_w, E, hp.norm_eps);
    kt.axpy(x_.data() + t * E, 1.0f, r, E);
  };
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    const Layer& L = layers_[static_cast<size_t>(il)];
    const cpu::AttentionShape as{hp.n_head, hp.n_head_kv, hp.head_dim, hp.attn_scale,
                                 L.swa ? hp.swa_window : 0, hp.attn_softcap};
    const cpu::RopeParams& rope = L.swa ? hp.rope_swa : hp.rope;
    const float* rope_cs = L.swa ? rope_cs_swa_.data() : rope_cs_.data();
    // Per-token work runs inside the products' activation passes (RowsPrep): split across the
    // pool with the quantization, each row normed (or gated) just before it is quantized.
    const cpu::RowsPrep attn_norm = [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        if (il > 0) residual(layers_[static_cast<size_t>(il - 1)].post_ffn_norm, t);  // its FFN output
        kt.rmsnorm(xn_.data() + t * E, x_.data() + t * E, L.attn_norm, E, hp.norm_eps);
      }
    };
    // Q/K/V with ~16-bit activations: errors here are amplified by the attention softmax (8-bit
    // activations cost ~1.5% teacher-forced top-1 agreement on SmolLM2; see matmul_precise).
    const int64_t D = q_dim + 2 * kv_dim;
    if (L.wqkv.data) {  // one product over the stacked rows, each token's q | k | v split out below
      grow(qkv_, T * D);
      cpu::matmul_precise(L.wqkv, xn_.data(), T, qkv_.data(), *pool_, mm_scratch_, &attn_norm);
    } else {
      cpu::matmul_precise(L.wq, xn_.data(), T, q_.data(), *pool_, mm_scratch_, &attn_norm);
      cpu::matmul_precise(L.wk, xn_.data(), T, k_.data(), *pool_, mm_scratch_);
      cpu::matmul_precise(L.wv, xn_.data(), T, v_.data(), *pool_, mm_scratch_);
    }
    // Per token: q | k | v split out, biases, RoPE, then its key/value row into its sequence's
    // page for this layer (tokens write distinct KV slots, so they can run in parallel).
    const size_t esz = cpu::kv_type_size(kv.type);
    const int64_t layer_off = il * kv.layer_stride;
    const cpu::KvPagesView view{static_cast<uint8_t*>(kv.k) + layer_off * esz,
                                static_cast<uint8_t*>(kv.v) + layer_off * esz, kv.type, kv.page_stride};
    // With the stacked product, q | k | v stay in its rows (RoPE in place; attention reads q at
    // that row stride), so nothing is copied out.
    float* const q_base = L.wqkv.data ? qkv_.data() : q_.data();
    const int64_t q_stride = L.wqkv.data ? D : q_dim;
    per_tokens(*pool_, T, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        float* q = q_base + t * q_stride;
        float* k = L.wqkv.data ? q + q_dim : k_.data() + t * kv_dim;
        float* v = L.wqkv.data ? q + q_dim + kv_dim : v_.data() + t * kv_dim;
        if (L.bq) {
          kt.axpy(q, 1.0f, L.bq, q_dim);
          kt.axpy(k, 1.0f, L.bk, kv_dim);
          kt.axpy(v, 1.0f, L.bv, kv_dim);
        }
        if (L.q_norm) {  // gemma3, qwen3: each head RMS-normed before RoPE (rmsnorm works in place)
          for (int64_t h = 0; h < hp.n_head; ++h)
            kt.rmsnorm(q + h * hp.head_dim, q + h * hp.head_dim, L.q_norm, hp.head_dim, hp.norm_eps);
          for (int64_t h = 0; h < hp.n_head_kv; ++h)
            kt.rmsnorm(k + h * hp.head_dim, k + h * hp.head_dim, L.k_norm, hp.head_dim, hp.norm_eps);
        }
        const float* cs = rope_cs + t * 2 * rd;
        cpu::rope_apply(q, hp.n_head, hp.head_dim, cs, rope);
        cpu::rope_apply(k, hp.n_head_kv, hp.head_dim, cs, rope);
        const int64_t page = tok_pages_[static_cast<size_t>(t)][pos[t] / cpu::kKvBlockTokens];
        cpu::kv_store_position(view, as, page, pos[t] % cpu::kKvBlockTokens, k, v);
      }
    });
    cpu::attention_paged(q_base, att_.data(), T, pos, tok_pages_.data(), view, as, *pool_,
                         att_scores_, q_stride);
    cpu::matmul(L.wo, att_.data(), T, tmp_.data(), *pool_, mm_scratch_);

    const cpu::RowsPrep ffn_norm = [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        residual(L.post_attn_norm, t);  // the attention output
        kt.rmsnorm(xn_.data() + t * E, x_.data() + t * E, L.ffn_norm, E, hp.norm_eps);
      }
    };
    const int64_t F = hp.n_ff;
    if (L.w_gate_up.data) {  // [T][gate | up] in one product; silu(gate) * up per token below
      grow(qkv_, T * 2 * F);
      cpu::matmul(L.w_gate_up, xn_.data(), T, qkv_.data(), *pool_, mm_scratch_, &ffn_norm);
      const cpu::RowsPrep swiglu = [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const float* r = qkv_.data() + t * 2 * F;
          act(gate_.data() + t * F, r, r + F, F);
        }
      };
      cpu::matmul(L.w_down, gate_.data(), T, tmp_.data(), *pool_, mm_scratch_, &swiglu);
    } else {
      cpu::matmul(L.w_gate, xn_.data(), T, gate_.data(), *pool_, mm_scratch_, &ffn_norm);
      cpu::matmul(L.w_up, xn_.data(), T, up_.data(), *pool_, mm_scratch_);
      const cpu::RowsPrep swiglu = [&](int64_t t0, int64_t t1) {
        act(gate_.data() + t0 * F, gate_.data() + t0 * F, up_.data() + t0 * F, (t1 - t0) * F);
      };
      cpu::matmul(L.w_down, gate_.data(), T, tmp_.data(), *pool_, mm_scratch_, &swiglu);
    }
  }
  if (l1 <= l0) return;  // no logits wanted: the last FFN output never needs adding
  // Output head on the requested rows only, gathered into consecutive rows of xn_. With ~16-bit
  // activations, as Q/K/V: the logits' rounding decides near-tied top-1 tokens (8-bit activations
  // here cost ~1.4% teacher-forced top-1 agreement on SmolLM2, 98.4% -> 97.0%), and decode, where
  // the head is read once per token, runs as fast either way.
  const int64_t rows = l1 - l0;
  for (int64_t j = 0; j < rows; ++j) {
    const int64_t t = b.logit_rows[l0 + j] - t0;
    residual(layers_.back().post_ffn_norm, t);  // the last FFN output, on the rows the head reads
    kt.rmsnorm(xn_.data() + j * E, x_.data() + t * E, output_norm_, E, hp.norm_eps);
  }
  if (b.hidden) std::memcpy(b.hidden + l0 * E, xn_.data(), sizeof(float) * static_cast<size_t>(rows * E));
  if (!b.logits) return;
  cpu::matmul_precise(output_, xn_.data(), rows, b.logits + l0 * hp.n_vocab, *pool_, mm_scratch_);
  if (hp.final_softcap > 0.0f)
    per_tokens(*pool_, rows, [&](int64_t a, int64_t e) {
      for (int64_t j = a; j < e; ++j) kt.softcap(b.logits + (l0 + j) * hp.n_vocab, hp.n_vocab, hp.final_softcap);
    });
}

}  // namespace llmasos
