// The traits table (one row per tensor type) and the scalar reference routines: fp16/bf16
// conversion, dequantize_row for every type and ggml's reference quantize_row. Compiled once with
// generic flags; these are the ground truth the per-ISA kernels are tested against.
#include "quant/quant_types.h"

#include <cmath>
#include <cstring>

#include "quant/quant_blocks.h"
#include "quant/quant_kquants.h"

namespace llmasos {

using namespace quant;

// ---- fp16 / bf16 --------------------------------------------------------------------------------

uint16_t fp32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 64);  // quiet nan
  return static_cast<uint16_t>((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);          // nearest even
}

namespace {

float h2f(uint16_t h) { return fp16_to_fp32(h); }
uint16_t f2h(float f) { return fp32_to_fp16(f); }

// ---- float types --------------------------------------------------------------------------------

void dequant_f32(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, n * 4); }
void quant_f32(const float* src, void* dst, int64_t n) { std::memcpy(dst, src, n * 4); }
void dequant_f16(const void* src, float* dst, int64_t n) {
  const uint16_t* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = h2f(s[i]);
}
void quant_f16(const float* src, void* dst, int64_t n) {
  uint16_t* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = f2h(src[i]);
}
void dequant_bf16(const void* src, float* dst, int64_t n) {
  const uint16_t* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = f32_from_bits(static_cast<uint32_t>(s[i]) << 16);
}
void quant_bf16(const float* src, void* dst, int64_t n) {
  uint16_t* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_bf16(src[i]);
}

// ---- legacy 32-element formats ------------------------------------------------------------------

void dequant_q4_0(const void* src, float* y, int64_t n) {
  const BlockQ4_0* x = static_cast<const BlockQ4_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    const float d = h2f(x[i].d);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * ((x[i].qs[j] & 0x0f) - 8);
      y[j + 16] = d * ((x[i].qs[j] >> 4) - 8);
    }
  }
}

void dequant_q4_1(const void* src, float* y, int64_t n) {
  const BlockQ4_1* x = static_cast<const BlockQ4_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    const float d = h2f(x[i].d), m = h2f(x[i].m);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * (x[i].qs[j] & 0x0f) + m;
      y[j + 16] = d * (x[i].qs[j] >> 4) + m;
    }
  }
}

void dequant_q5_0(const void* src, float* y, int64_t n) {
  const BlockQ5_0* x = static_cast<const BlockQ5_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    const float d = h2f(x[i].d);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, 4);
    for (int j = 0; j < 16; ++j) {
      const int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
      y[j] = d * (((x[i].qs[j] & 0x0f) | h0) - 16);
      y[j + 16] = d * (((x[i].qs[j] >> 4) | h1) - 16);
    }
  }
}

void dequant_q5_1(const void* src, float* y, int64_t n) {
  const BlockQ5_1* x = static_cast<const BlockQ5_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    const float d = h2f(x[i].d), m = h2f(x[i].m);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, 4);
    for (int j = 0; j < 16; ++j) {
      const int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
      y[j] = d * ((x[i].qs[j] & 0x0f) | h0) + m;
      y[j + 16] = d * ((x[i].qs[j] >> 4) | h1) + m;
    }
  }
}

void dequant_q8_0(const void* src, float* y, int64_t n) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    const float d = h2f(x[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = d * x[i].qs[j];
  }
}

void dequant_q8_1(const void* src, float* y, int64_t n) {
  const BlockQ8_1* x = static_cast<const BlockQ8_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    const float d = h2f(x[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = d * x[i].qs[j];
  }
}

// ggml's reference quantizers (quantize_row_*_ref), bit for bit: same operations, same order.
// max is the signed value of largest magnitude; d = max / -8 maps it to q = 0.
void quant_q4_0(const float* x, void* dst, int64_t n) {
  BlockQ4_0* y = static_cast<BlockQ4_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax = 0.f, max = 0.f;
    for (int j = 0; j < kQK; ++j)
      if (amax < std::fabs(x[j])) { amax = std::fabs(x[j]); max = x[j]; }
    const float d = max / -8, id = d ? 1.0f / d : 0.0f;
    y[i].d = f2h(d);
    for (int j = 0; j < 16; ++j) {
      int q0 = static_cast<int8_t>(x[j] * id + 8.5f), q1 = static_cast<int8_t>(x[j + 16] * id + 8.5f);
      q0 = q0 < 15 ? q0 : 15;
      q1 = q1 < 15 ? q1 : 15;
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quant_q4_1(const float* x, void* dst, int64_t n) {
  BlockQ4_1* y = static_cast<BlockQ4_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float min = INFINITY, max = -INFINITY;
    for (int j = 0; j < kQK; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 15, id = d ? 1.0f / d : 0.0f;
    y[i].d = f2h(d);
    y[i].m = f2h(min);
    for (int j = 0; j < 16; ++j) {
      int q0 = static_cast<int8_t>((x[j] - min) * id + 0.5f);
      int q1 = static_cast<int8_t>((x[j + 16] - min) * id + 0.5f);
      q0 = q0 < 15 ? q0 : 15;
      q1 = q1 < 15 ? q1 : 15;
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quant_q5_0(const float* x, void* dst, int64_t n) {
  BlockQ5_0* y = static_cast<BlockQ5_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax = 0.f, max = 0.f;
    for (int j = 0; j < kQK; ++j)
      if (amax < std::fabs(x[j])) { amax = std::fabs(x[j]); max = x[j]; }
    const float d = max / -16, id = d ? 1.0f / d : 0.0f;
    y[i].d = f2h(d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      int q0 = static_cast<int8_t>(x[j] * id + 16.5f), q1 = static_cast<int8_t>(x[j + 16] * id + 16.5f);
      q0 = q0 < 31 ? q0 : 31;
      q1 = q1 < 31 ? q1 : 31;
      y[i].qs[j] = static_cast<uint8_t>((q0 & 0x0f) | ((q1 & 0x0f) << 4));
      qh |= ((static_cast<uint32_t>(q0) & 0x10u) >> 4) << j;
      qh |= ((static_cast<uint32_t>(q1) & 0x10u) >> 4) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

void quant_q5_1(const float* x, void* dst, int64_t n) {
  BlockQ5_1* y = static_cast<BlockQ5_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float min = INFINITY, max = -INFINITY;
    for (int j = 0; j < kQK; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 31, id = d ? 1.0f / d : 0.0f;
    y[i].d = f2h(d);
    y[i].m = f2h(min);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      int q0 = static_cast<uint8_t>((x[j] - min) * id + 0.5f);
      int q1 = static_cast<uint8_t>((x[j + 16] - min) * id + 0.5f);
      q0 = q0 < 31 ? q0 : 31;
      q1 = q1 < 31 ? q1 : 31;
      y[i].qs[j] = static_cast<uint8_t>((q0 & 0x0f) | ((q1 & 0x0f) << 4));
      qh |= ((static_cast<uint32_t>(q0) & 0x10u) >> 4) << j;
      qh |= ((static_cast<uint32_t>(q1) & 0x10u) >> 4) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

// Q8_0 / Q8_1: d = amax / 127, q = roundf(x / d) (half away from zero).
void quant_q8_0(const float* x, void* dst, int64_t n) {
  BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax = 0.f;
    for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
    y[i].d = f2h(d);
    for (int j = 0; j < kQK; ++j) y[i].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
  }
}

void quant_q8_1(const float* x, void* dst, int64_t n) {
  BlockQ8_1* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax = 0.f;
    for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
    y[i].d = f2h(d);
    int sum = 0;
    for (int j = 0; j < kQK; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
      sum += y[i].qs[j];
    }
    y[i].s = f2h(static_cast<float>(sum) * d);
  }
}

// ---- Q8_K (activations of the K-quant dot products) ---------------------------------------------

void dequant_q8_k(const void* src, float* y, int64_t n) {
  const BlockQ8_K* x = static_cast<const BlockQ8_K*>(src);
  for (int64_t i = 0; i < n / kQKK; ++i, y += kQKK)
    for (int j = 0; j < kQKK; ++j) y[j] = x[i].d * x[i].qs[j];
}

// ggml's quantize_row_q8_K_ref: scale -127 / max (max: the signed value of largest magnitude),
// round to nearest even, clamp to 127 (the opposite sign may reach -128), then 16-element sums.
void quant_q8_k(const float* x, void* dst, int64_t n) {
  BlockQ8_K* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    float amax = 0.f, max = 0.f;
    for (int j = 0; j < kQKK; ++j)
      if (std::fabs(x[j]) > amax) { amax = std::fabs(x[j]); max = x[j]; }
    if (amax == 0.f) {
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < kQKK; ++j) {
      int v = nearest_int(iscale * x[j]);
      y[i].qs[j] = static_cast<int8_t>(v < 127 ? v : 127);
    }
    for (int j = 0; j < kQKK / 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[i].qs[j * 16 + l];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

// ---- the table ----------------------------------------------------------------------------------

struct Table {
  TypeTraits rows[kGgmlTypeCount];
  Table() {
    auto set = [&](GgmlType t, const char* name, int64_t bs, int64_t ts, GgmlType vdt,
                   void (*deq)(const void*, float*, int64_t), void (*q)(const float*, void*, int64_t)) {
      TypeTraits& r = rows[static_cast<uint32_t>(t)];
      r.name = name;
      r.block_size = bs;
      r.type_size = ts;
      r.vec_dot_type = vdt;
      r.dequantize_row = deq;
      r.quantize_row = q;
    };
    using G = GgmlType;
    set(G::F32, "F32", 1, 4, G::F32, dequant_f32, quant_f32);
    set(G::F16, "F16", 1, 2, G::F32, dequant_f16, quant_f16);
    set(G::BF16, "BF16", 1, 2, G::F32, dequant_bf16, quant_bf16);
    set(G::Q4_0, "Q4_0", kQK, sizeof(BlockQ4_0), G::Q8_0, dequant_q4_0, quant_q4_0);
    set(G::Q4_1, "Q4_1", kQK, sizeof(BlockQ4_1), G::Q8_1, dequant_q4_1, quant_q4_1);
    set(G::Q5_0, "Q5_0", kQK, sizeof(BlockQ5_0), G::Q8_0, dequant_q5_0, quant_q5_0);
    set(G::Q5_1, "Q5_1", kQK, sizeof(BlockQ5_1), G::Q8_1, dequant_q5_1, quant_q5_1);
    set(G::Q8_0, "Q8_0", kQK, sizeof(BlockQ8_0), G::Q8_0, dequant_q8_0, quant_q8_0);
    set(G::Q8_1, "Q8_1", kQK, sizeof(BlockQ8_1), G::Q8_1, dequant_q8_1, quant_q8_1);
    set(G::Q4_K, "Q4_K", kQKK, sizeof(BlockQ4_K), G::Q8_K, dequant_q4_k, quant_q4_k);
    set(G::Q5_K, "Q5_K", kQKK, sizeof(BlockQ5_K), G::Q8_K, dequant_q5_k, quant_q5_k);
    set(G::Q6_K, "Q6_K", kQKK, sizeof(BlockQ6_K), G::Q8_K, dequant_q6_k, quant_q6_k);
    set(G::Q8_K, "Q8_K", kQKK, sizeof(BlockQ8_K), G::Q8_K, dequant_q8_k, quant_q8_k);
  }
};

}  // namespace

const TypeTraits* type_traits(uint32_t type_id) {
  static const Table table;
  if (type_id >= kGgmlTypeCount || !table.rows[type_id].name) return nullptr;
  return &table.rows[type_id];
}

}  // namespace llmasos
