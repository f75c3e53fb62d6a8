// Sampler: penalties -> (greedy | temperature -> top-k -> softmax -> top-p -> min-p -> draw);
// logprobs, when asked for, from a log-softmax of the raw logits taken before any of that.
#include "engine/sampler.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "engine/output_constraint.h"
#include "kernels/cpu/kernel_table.h"
#include "llmasos/errors.hpp"

namespace llmasos {

void SamplingOptions::validate() const {
  auto bad = [](const char* what, float v) {
    throw InvalidArgumentError(std::string(what) + " has an invalid value " + std::to_string(v));
  };
  if (!std::isfinite(temperature) || temperature < 0.0f) bad("temperature", temperature);
  if (top_k < 0) bad("top_k", static_cast<float>(top_k));
  if (!std::isfinite(top_p) || top_p <= 0.0f || top_p > 1.0f) bad("top_p (must be in (0, 1])", top_p);
  if (!std::isfinite(min_p) || min_p < 0.0f || min_p > 1.0f) bad("min_p (must be in [0, 1])", min_p);
  if (!std::isfinite(repetition_penalty) || repetition_penalty <= 0.0f) bad("repetition_penalty", repetition_penalty);
  if (!std::isfinite(presence_penalty) || std::fabs(presence_penalty) > 2.0f) bad("presence_penalty (must be in [-2, 2])", presence_penalty);
  if (!std::isfinite(frequency_penalty) || std::fabs(frequency_penalty) > 2.0f) bad("frequency_penalty (must be in [-2, 2])", frequency_penalty);
  for (const auto& [id, b] : logit_bias) {
    if (id < 0) bad("logit_bias token id", static_cast<float>(id));
    if (!std::isfinite(b) || std::fabs(b) > 100.0f) bad("logit_bias value (must be in [-100, 100])", b);
  }
  if (repetition_last_n < 0) bad("repetition_last_n", static_cast<float>(repetition_last_n));
  for (int32_t id : allowed_token_ids)
    if (id < 0) bad("allowed_token_ids token id", static_cast<float>(id));
  if (logprobs < -1 || logprobs > kMaxLogprobs)
    throw InvalidArgumentError("logprobs must be -1 (off) or in [0, " + std::to_string(kMaxLogprobs) +
                               "], got " + std::to_string(logprobs));
}

void SamplingOptions::validate_for_vocab(int64_t n_vocab) const {
  validate();
  for (const auto& [id, b] : logit_bias)
    if (id >= n_vocab)
      throw InvalidArgumentError("logit_bias token id " + std::to_string(id) + " is out of range [0, " +
                                 std::to_string(n_vocab) + ")");
  for (int32_t id : allowed_token_ids)
    if (id >= n_vocab)
      throw InvalidArgumentError("allowed_token_ids token id " + std::to_string(id) + " is out of range [0, " +
                                 std::to_string(n_vocab) + ")");
}

Sampler::Sampler(const SamplingOptions& opts) : o_(opts) {
  o_.validate();
  if (o_.has_seed) {
    rng_.seed(o_.seed);
  } else {
    std::random_device rd;
    rng_.seed((static_cast<uint64_t>(rd()) << 32) ^ rd());
  }
}

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// A sum over a vocabulary row in 4 running sums by index (a fixed order, 4 chains instead of one).
struct Sum4 {
  double s[4] = {0.0, 0.0, 0.0, 0.0};
  void add(int64_t i, float w) { s[i & 3] += w; }
  double total() const { return (s[0] + s[1]) + (s[2] + s[3]); }
};

// log(sum(exp(x))) over a row: max subtracted, exp summed in double in index order, so a row gives
// the same value whatever batch it was computed in.
double log_sum_exp(const float* x, int64_t n) {
  float mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - mx);
  return mx + std::log(sum);
}

// The k largest (logit, id) of a row, largest first, ties to the lower id: one pass with
// insertion into a sorted array of k (k <= kMaxLogprobs, so no heap is worth it).
void top_k_logits(const float* x, int64_t n, int32_t k, std::vector<std::pair<int32_t, float>>& out) {
  out.clear();
  const size_t K = static_cast<size_t>(std::min<int64_t>(k, n));
  if (K == 0) return;
  for (int64_t i = 0; i < n; ++i) {
    if (out.size() == K && !(x[i] > out.back().second)) continue;  // equal: the lower id stays
    if (out.size() < K) out.emplace_back();
    size_t j = out.size() - 1;
    while (j > 0 && x[i] > out[j - 1].second) {
      out[j] = out[j - 1];
      --j;
    }
    out[j] = {static_cast<int32_t>(i), x[i]};
  }
}

// Sum4 over the kept tokens: w[i] goes to all's lane i & 3 where x[i] is not masked, w[i] > 0 and
// w[i] >= floor, and also to above's where w[i] >= high; the others add +0.0, which leaves a lane
// (never negative) as it is. So the sums are those of adding the kept tokens one by one in id
// order, and the loop has no branch: it runs in vector lanes.
void sum_weights(const float* x, const float* w, int64_t n, float floor, float high, Sum4& all,
                 Sum4& above) {
  int64_t i = 0;
#if defined(__SSE2__)
  // SSE2 (every x86-64): 4 tokens a trip, lanes 0-1 and 2-3 of each Sum4 in two double vectors.
  // (The compiler keeps the scalar loop below scalar: the conditional float -> double sums.)
  __m128d a01 = _mm_loadu_pd(all.s), a23 = _mm_loadu_pd(all.s + 2);
  __m128d b01 = _mm_loadu_pd(above.s), b23 = _mm_loadu_pd(above.s + 2);
  const __m128 ninf = _mm_set1_ps(kNegInf), zero = _mm_setzero_ps();
  const __m128 fl = _mm_set1_ps(floor), hi = _mm_set1_ps(high);
  for (; i + 4 <= n; i += 4) {
    const __m128 v = _mm_loadu_ps(w + i), xv = _mm_loadu_ps(x + i);
    const __m128 ok = _mm_and_ps(_mm_and_ps(_mm_cmpneq_ps(xv, ninf), _mm_cmpgt_ps(v, zero)), _mm_cmpge_ps(v, fl));
    const __m128 d = _mm_and_ps(ok, v);  // +0.0 where not kept
    const __m128 e = _mm_and_ps(_mm_cmpge_ps(v, hi), d);
    a01 = _mm_add_pd(a01, _mm_cvtps_pd(d));
    a23 = _mm_add_pd(a23, _mm_cvtps_pd(_mm_movehl_ps(d, d)));
    b01 = _mm_add_pd(b01, _mm_cvtps_pd(e));
    b23 = _mm_add_pd(b23, _mm_cvtps_pd(_mm_movehl_ps(e, e)));
  }
  _mm_storeu_pd(all.s, a01);
  _mm_storeu_pd(all.s + 2, a23);
  _mm_storeu_pd(above.s, b01);
  _mm_storeu_pd(above.s + 2, b23);
#endif
  for (; i < n; ++i) {
    const float v = w[i];
    const double d = x[i] != kNegInf && v > 0.0f && v >= floor ? static_cast<double>(v) : 0.0;
    all.s[i & 3] += d;
    above.s[i & 3] += v >= high ? d : 0.0;
  }
}

// The first largest logit, after non-finite ones are made drawable or not (a broken model, or
// penalties on one): NaN becomes -inf (never drawn), +inf the largest float; masked tokens (-inf)
// stay as they are. Greedy decoding of a batch runs this over every row of 49152 logits or so each
// step, so the common case is two passes in vector lanes: running maxima that also catch NaN /
// +inf (neither is below +inf), then the first index holding the maximum.
int64_t first_largest(float* x, int64_t n) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  float m = kNegInf;
  bool any_bad = false;
  int64_t i = 0;
#if defined(__SSE2__)
  // _mm_max_ps(v, mx) is v > mx ? v : mx: a NaN v leaves mx, so the lanes hold no NaN.
  const __m128 inf = _mm_set1_ps(kInf);
  __m128 mx[4], bad = _mm_setzero_ps();
  for (int k = 0; k < 4; ++k) mx[k] = _mm_set1_ps(kNegInf);
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 4; ++k) {
      const __m128 v = _mm_loadu_ps(x + i + 4 * k);
      mx[k] = _mm_max_ps(v, mx[k]);
      bad = _mm_or_ps(bad, _mm_cmpnlt_ps(v, inf));
    }
  float lanes[16];
  for (int k = 0; k < 4; ++k) _mm_storeu_ps(lanes + 4 * k, mx[k]);
  for (float v : lanes) m = v > m ? v : m;
  any_bad = _mm_movemask_ps(bad) != 0;
#endif
  for (; i < n; ++i) {
    m = x[i] > m ? x[i] : m;
    any_bad = any_bad || !(x[i] < kInf);
  }
  if (any_bad) {  // rare: fix the row, then take its maximum again
    m = kNegInf;
    for (i = 0; i < n; ++i) {
      if (std::isnan(x[i])) x[i] = kNegInf;
      else if (x[i] == kInf) x[i] = std::numeric_limits<float>::max();
      m = x[i] > m ? x[i] : m;
    }
  }
  i = 0;
#if defined(__SSE2__)
  const __m128 mv = _mm_set1_ps(m);
  for (; i + 16 <= n; i += 16) {
    int hit = 0;
    for (int k = 0; k < 4; ++k) hit |= _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(x + i + 4 * k), mv)) << (4 * k);
    if (hit) return i + __builtin_ctz(static_cast<unsigned>(hit));
  }
#endif
  for (; i < n; ++i)
    if (x[i] == m) return i;
  return 0;  // n == 0
}

// A row's log-sum-exp, with lp.top set to its k most likely tokens' logprobs.
double top_logprobs(const float* x, int64_t n, int32_t k, TokenLogprobs& lp) {
  const double lse = log_sum_exp(x, n);
  top_k_logits(x, n, k, lp.top);
  for (auto& [id, v] : lp.top) v = static_cast<float>(v - lse);
  return lse;
}

// lp's own logprob and rank: `token`'s under the same raw row, whose log-sum-exp is lse.
void own_logprob(const float* x, int64_t n, int32_t token, double lse, TokenLogprobs& lp) {
  int32_t above = 0;
  for (int64_t i = 0; i < n; ++i) above += x[i] > x[token];
  lp.logprob = static_cast<float>(x[token] - lse);
  lp.rank = above + 1;
}

}  // namespace

TokenLogprobs token_logprobs(const float* logits, int64_t n_vocab, int32_t token, int32_t k) {
  if (token < 0 || token >= n_vocab)
    throw InvalidArgumentError("token id " + std::to_string(token) + " is outside the vocabulary");
  TokenLogprobs lp;
  own_logprob(logits, n_vocab, token, top_logprobs(logits, n_vocab, k, lp), lp);
  return lp;
}

int32_t Sampler::sample(float* logits, int64_t n_vocab, const std::vector<int32_t>& prompt,
                        const std::vector<int32_t>& generated, TokenLogprobs* lp,
                        const OutputConstraint* json) {
  const bool want_lp = lp && o_.logprobs >= 0;  // without, logprobs cost nothing
  const float* raw = logits;
  double lse = 0.0;
  if (want_lp) {
    // The raw row is read again after pick(); the constraint's mask and pick() edit it in place.
    const bool edits = json || hold_until_ > 0 || !o_.allowed_token_ids.empty() || !o_.logit_bias.empty() ||
                       o_.repetition_penalty != 1.0f ||
                       o_.presence_penalty != 0.0f || o_.frequency_penalty != 0.0f;
    if (edits) raw_.assign(logits, logits + n_vocab);
    raw = edits ? raw_.data() : logits;
    lse = top_logprobs(logits, n_vocab, o_.logprobs, *lp);
  }
  if (json && json->mask(logits, n_vocab) == 0) return -1;
  int32_t id = pick(logits, n_vocab, prompt, generated);
  if (json) id = allowed(id, logits, n_vocab);  // -1: every allowed logit was NaN
  // allowed_token_ids left only tokens min_tokens holds back: none may come (a masked token is
  // never drawn).
  if (id >= 0 && logits[id] == kNegInf && (hold_until_ > 0 || !o_.allowed_token_ids.empty())) return -1;
  if (id < 0 || !want_lp) return id;
  own_logprob(raw, n_vocab, id, lse, *lp);
  return id;
}

int32_t Sampler::allowed(int32_t id, const float* logits, int64_t n_vocab) {
  // pick() gives masked tokens no weight, so this never changes the draw; it keeps a masked token
  // from ever leaving the sampler should a non-finite logit upset the arithmetic.
  if (id >= 0 && logits[id] > kNegInf) return id;
  int64_t best = -1;
  for (int64_t i = 0; i < n_vocab; ++i)
    if (logits[i] > kNegInf && (best < 0 || logits[i] > logits[best])) best = i;
  return static_cast<int32_t>(best);
}

int32_t Sampler::pick(float* logits, int64_t n_vocab, const std::vector<int32_t>& prompt,
                      const std::vector<int32_t>& generated) {
  if (!o_.allowed_token_ids.empty()) {  // only these: the others are masked
    if (static_cast<int64_t>(allowed_.size()) != n_vocab) {
      allowed_.assign(static_cast<size_t>(n_vocab), 0);
      for (int32_t id : o_.allowed_token_ids)
        if (id >= 0 && id < n_vocab) allowed_[static_cast<size_t>(id)] = 1;
    }
    for (int64_t i = 0; i < n_vocab; ++i)
      if (!allowed_[static_cast<size_t>(i)]) logits[i] = kNegInf;
  }
  for (const auto& [id, b] : o_.logit_bias)  // ids were checked by validate_for_vocab
    if (id >= 0 && id < n_vocab) logits[id] += b;
  // Repetition penalty (CTRL-style, as in HF and llama.cpp) over prompt and output tokens.
  if (o_.repetition_penalty != 1.0f) {
    std::vector<bool> seen(static_cast<size_t>(n_vocab), false);
    // The last repetition_last_n of prompt + generated (all when 0): `skip` of them left out.
    const size_t total = prompt.size() + generated.size();
    size_t skip = o_.repetition_last_n > 0 && total > static_cast<size_t>(o_.repetition_last_n)
                      ? total - static_cast<size_t>(o_.repetition_last_n) : 0;
    auto mark = [&](const std::vector<int32_t>& ids) {
      const size_t from = std::min(skip, ids.size());
      skip -= from;
      for (size_t k = from; k < ids.size(); ++k)
        if (ids[k] >= 0 && ids[k] < n_vocab) seen[static_cast<size_t>(ids[k])] = true;
    };
    mark(prompt);
    mark(generated);
    for (int64_t i = 0; i < n_vocab; ++i)
      if (seen[static_cast<size_t>(i)])
        logits[i] = logits[i] > 0 ? logits[i] / o_.repetition_penalty : logits[i] * o_.repetition_penalty;
  }
  // OpenAI presence / frequency penalties over generated tokens.
  if (o_.presence_penalty != 0.0f || o_.frequency_penalty != 0.0f) {
    std::unordered_map<int32_t, int> counts;
    for (int32_t id : generated) ++counts[id];
    for (const auto& [id, c] : counts)
      if (id >= 0 && id < n_vocab) logits[id] -= o_.presence_penalty + o_.frequency_penalty * c;
  }
  if (static_cast<int64_t>(generated.size()) < hold_until_)  // min_tokens: no end yet
    for (int32_t id : hold_ids_)
      if (id >= 0 && id < n_vocab) logits[id] = kNegInf;
  const int64_t i_top = first_largest(logits, n_vocab);
  if (o_.temperature <= 0.0f || logits[i_top] == kNegInf) return static_cast<int32_t>(i_top);
  return draw(logits, n_vocab, i_top);
}

// Weights: softmax of (x - max) / T by the kernels' vectorized canonical exp (the same bits at
// every ISA level, so a seed gives the same tokens on any machine). The exponent is never
// positive, so no temperature overflows it. The exp clamps below -87.3: a masked token (-inf)
// gets a weight of about 1e-38 / sum, not 0, so every use below skips masked tokens by their logit.
int32_t Sampler::draw(const float* logits, int64_t n_vocab, int64_t i_top) {
  const float mx = logits[i_top], T = o_.temperature;
  cand_.clear();
  double sum = 0.0;  // what top_p measures its share of: the weight of the tokens it chooses among
  bool sorted = false;
  if (o_.top_k > 0 && o_.top_k < n_vocab) {
    select_top_k(logits, n_vocab, static_cast<size_t>(o_.top_k));
    w_.resize(cand_.size());
    for (size_t i = 0; i < cand_.size(); ++i) w_[i] = (cand_[i].x - mx) / T;
    cpu::kernels().softmax(w_.data(), static_cast<int64_t>(cand_.size()));
    for (size_t i = 0; i < cand_.size(); ++i) {
      cand_[i].w = cand_[i].x == kNegInf ? 0.0f : w_[i];
      sum += cand_[i].w;
    }
    sorted = true;
  } else {
    w_.resize(static_cast<size_t>(n_vocab));
    cpu::kernels().sub_div(logits, mx, T, w_.data(), n_vocab);
    cpu::kernels().softmax(w_.data(), n_vocab);
    if (o_.top_p >= 1.0f && o_.min_p <= 0.0f) return draw_all(logits, n_vocab, i_top);
    const float w_top = w_[static_cast<size_t>(i_top)];  // the top logit's weight is the largest
    // min_p alone is a floor applied first; with top_p it applies to top_p's prefix (below).
    const bool by_top_p = o_.top_p < 1.0f;
    const float floor = by_top_p ? 0.0f : o_.min_p * w_top;
    // top_p keeps a prefix of the tokens sorted by weight. When the tokens of at least 1/1024 of
    // the top weight already hold (with room for rounding) more than top_p of the mass, that
    // prefix lies among them, and only they need a candidate entry and sorting (usually a few
    // hundred of the 49152). One pass sums both masses, each in 4 fixed running sums.
    const float high = w_top / 1024.0f;
    Sum4 all, above;
    sum_weights(logits, w_.data(), n_vocab, floor, high, all, above);
    sum = all.total();
    const float from = by_top_p && above.total() >= o_.top_p * sum * 1.0001 ? high : floor;
    collect(logits, n_vocab, from);
  }
  size_t n = cand_.size();
  if (o_.top_p < 1.0f) {
    // The smallest prefix of the sorted order whose probability reaches top_p. Sort only as far as
    // needed: a growing prefix (64, 256, ... tokens) until its mass reaches top_p.
    size_t m = sorted ? n : std::min<size_t>(n, 64);
    for (;;) {
      if (!sorted) std::partial_sort(cand_.begin(), cand_.begin() + m, cand_.begin() + n, better);
      double cum = 0.0;
      size_t keep = 0;
      while (keep < m && cum < o_.top_p * sum) cum += cand_[keep++].w;
      if (cum >= o_.top_p * sum || m == n) {
        n = keep;
        sorted = true;
        break;
      }
      m = std::min(n, m * 4);
    }
  }
  if (o_.min_p > 0.0f && sorted && n > 0) {  // after top-k / top-p: on the sorted prefix
    const float floor = o_.min_p * cand_[0].w;  // the top candidate's weight
    size_t keep = 1;
    while (keep < n && cand_[keep].w >= floor) ++keep;
    n = keep;
  }
  if (n == 0) return static_cast<int32_t>(i_top);  // nothing kept (cannot happen: the top weighs most)
  // Draw over the kept candidates (sorted order, or id order when nothing truncated them).
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) total += cand_[i].w;
  std::uniform_real_distribution<double> dist(0.0, total);
  double r = dist(rng_), acc = 0.0;
  for (size_t i = 0; i < n; ++i) {
    acc += cand_[i].w;
    if (r < acc) return cand_[i].id;
  }
  // Rounding left r at the total: the last candidate with any weight (masked tokens have none).
  for (size_t i = n; i-- > 1;)
    if (cand_[i].w > 0.0f) return cand_[i].id;
  return cand_[0].id;
}

// Nothing to filter: a draw in id order straight from the weights (masked tokens skipped), the
// total in 4 fixed running sums instead of one chain.
int32_t Sampler::draw_all(const float* logits, int64_t n_vocab, int64_t i_top) {
  Sum4 all, unused;
  sum_weights(logits, w_.data(), n_vocab, kNegInf, std::numeric_limits<float>::infinity(), all, unused);
  std::uniform_real_distribution<double> dist(0.0, all.total());
  const double r = dist(rng_);
  double acc = 0.0;
  int64_t last = i_top;
  for (int64_t i = 0; i < n_vocab; ++i) {
    if (logits[i] == kNegInf || !(w_[static_cast<size_t>(i)] > 0.0f)) continue;
    acc += w_[static_cast<size_t>(i)];
    last = i;
    if (r < acc) return static_cast<int32_t>(i);
  }
  return static_cast<int32_t>(last);  // rounding left r at the total
}

void Sampler::collect(const float* logits, int64_t n_vocab, float from) {
  const float* w = w_.data();
  auto keep = [&](int64_t i) { return (logits[i] != kNegInf) & (w[i] > 0.0f) & (w[i] >= from); };
  // Usually a few hundred of the 49152 tokens are kept: runs of 16 are tested without a branch
  // (vector lanes), and only runs holding a kept token are walked one by one.
  constexpr int kRun = 16;
  int64_t i0 = 0;
  for (; i0 + kRun <= n_vocab; i0 += kRun) {
    int any = 0;
    for (int j = 0; j < kRun; ++j) any |= keep(i0 + j);
    if (any)
      for (int64_t i = i0; i < i0 + kRun; ++i)
        if (keep(i)) cand_.push_back({logits[i], w[i], static_cast<int32_t>(i)});
  }
  for (int64_t i = i0; i < n_vocab; ++i)
    if (keep(i)) cand_.push_back({logits[i], w[i], static_cast<int32_t>(i)});
}

// cand_ = the k best tokens by logit, best first, lower id first among equals (partial_sort's set
// and order). Up to 256: one pass in which a token enters only when it beats the k-th (about
// k ln(n / k) times), without an entry per token.
void Sampler::select_top_k(const float* logits, int64_t n_vocab, size_t k) {
  if (k > 256) {
    for (int64_t i = 0; i < n_vocab; ++i) cand_.push_back({logits[i], 0.0f, static_cast<int32_t>(i)});
    std::partial_sort(cand_.begin(), cand_.begin() + static_cast<int64_t>(k), cand_.end(), better);
    cand_.resize(k);
    return;
  }
  for (int64_t i = 0; i < n_vocab; ++i) {
    const float x = logits[i];
    if (cand_.size() == k && !(x > cand_.back().x)) continue;  // equal: the lower id stays
    if (cand_.size() < k) cand_.emplace_back();
    size_t j = cand_.size() - 1;
    while (j > 0 && x > cand_[j - 1].x) {
      cand_[j] = cand_[j - 1];
      --j;
    }
    cand_[j] = {x, 0.0f, static_cast<int32_t>(i)};
  }
}

}  // namespace llmasos
