// The AMX tile operations the x8 tile kernels use (quant_gemm_amx.cc), as macros taking literal tile
// numbers: on the hardware, inline assembly (GCC's own _tile_* macros clobber no memory, so the
// compiler could move a store of a staged operand past the tile load that reads it, and pass
// LDTILECFG 8 bytes of its 64-byte operand; every operation here clobbers memory); with
// LLMASOS_AMX_EMULATE=1, a scalar model of the tile unit (8 tiles of 16 rows x 64 bytes per thread)
// that follows the instruction set reference, faulting (abort) where the CPU would fault on a bad
// configuration or mismatched tile shapes. The model lets a machine without AMX test the kernels'
// layouts, tile shapes and order bit for bit; only the tile instructions themselves differ.
//
// TDPB[SU][SU]D c, a, b: for m < rows(c), n < colsb(c) / 4, k < rows(b):
//   c[m].i32[n] += sum_i<4 (int8 | uint8)(a[m].byte[4k + i]) * (int8 | uint8)(b[k].byte[4n + i]),
// with colsb(a) == 4 rows(b), colsb(c) == colsb(b), rows(c) == rows(a).
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/isa.h"

#ifndef LLMASOS_AMX_EMULATE
#error "define LLMASOS_AMX_EMULATE (0: the tile instructions, 1: the scalar model)"
#endif

namespace llmasos::cpu::LLMASOS_ISA_NS {
namespace {

// LDTILECFG's 64-byte operand, palette 1: bytes per row and rows of each of the 8 tile registers.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved0[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64, "LDTILECFG operand");

#if LLMASOS_AMX_EMULATE

struct EmuTiles {
  TileConfig cfg;
  bool configured = false;
  alignas(64) uint8_t data[8][16][64] = {};
};

inline EmuTiles& emu_tiles() {
  static thread_local EmuTiles s;
  return s;
}

[[noreturn]] inline void emu_fault(const char* what) {
  std::fprintf(stderr, "llmasos amx_emu: %s (the CPU would fault here)\n", what);
  std::abort();
}

inline void emu_config(const TileConfig* c) {
  if (c->palette != 1 || c->start_row != 0) emu_fault("ldtilecfg: palette 1, start_row 0 expected");
  for (int i = 0; i < 16; ++i) {
    const bool used = c->colsb[i] != 0 || c->rows[i] != 0;
    if (i >= 8 && used) emu_fault("ldtilecfg: palette 1 has 8 tiles");
    if (used && (c->colsb[i] == 0 || c->rows[i] == 0 || c->colsb[i] > 64 || c->rows[i] > 16))
      emu_fault("ldtilecfg: a tile needs 1..16 rows of 1..64 bytes");
  }
  EmuTiles& s = emu_tiles();
  s.cfg = *c;
  s.configured = true;
  std::memset(s.data, 0, sizeof(s.data));
}

inline void emu_need(int t) {
  const EmuTiles& s = emu_tiles();
  if (!s.configured) emu_fault("tile instruction before ldtilecfg");
  if (s.cfg.rows[t] == 0) emu_fault("tile register not configured");
}

inline void emu_load(int t, const void* base, int64_t stride) {
  emu_need(t);
  EmuTiles& s = emu_tiles();
  std::memset(s.data[t], 0, sizeof(s.data[t]));
  for (int r = 0; r < s.cfg.rows[t]; ++r)
    std::memcpy(s.data[t][r], static_cast<const uint8_t*>(base) + r * stride, s.cfg.colsb[t]);
}

inline void emu_store(int t, void* base, int64_t stride) {
  emu_need(t);
  const EmuTiles& s = emu_tiles();
  for (int r = 0; r < s.cfg.rows[t]; ++r)
    std::memcpy(static_cast<uint8_t*>(base) + r * stride, s.data[t][r], s.cfg.colsb[t]);
}

inline void emu_zero(int t) {
  emu_need(t);
  std::memset(emu_tiles().data[t], 0, sizeof(emu_tiles().data[t]));
}

inline void emu_dp(bool signed_a, bool signed_b, int c, int a, int b) {
  emu_need(c), emu_need(a), emu_need(b);
  EmuTiles& s = emu_tiles();
  const TileConfig& k = s.cfg;
  if (c == a || c == b || a == b) emu_fault("tdpb*d: the three tiles must differ");
  if (k.colsb[a] != 4 * k.rows[b] || k.colsb[c] != k.colsb[b] || k.rows[c] != k.rows[a] || k.colsb[c] % 4)
    emu_fault("tdpb*d: tile shapes do not match");
  // The same sums as the reference loop (m, n, then k and i), taken k-major so the compiler can
  // vectorize over n: a product of 16 x 16 x 64 would otherwise cost tens of microseconds.
  const int rows = k.rows[c], cols = k.colsb[c] / 4;
  uint32_t acc[16][16];  // int32 arithmetic wraps like the hardware's
  for (int m = 0; m < rows; ++m) std::memcpy(acc[m], s.data[c][m], 4 * static_cast<size_t>(cols));
  for (int kk = 0; kk < k.rows[b]; ++kk) {
    for (int i = 0; i < 4; ++i) {
      uint32_t y[16];
      for (int n = 0; n < cols; ++n) {
        const uint8_t v = s.data[b][kk][4 * n + i];
        y[n] = signed_b ? static_cast<uint32_t>(static_cast<int32_t>(static_cast<int8_t>(v))) : v;
      }
      for (int m = 0; m < rows; ++m) {
        const uint8_t u = s.data[a][m][4 * kk + i];
        const uint32_t x = signed_a ? static_cast<uint32_t>(static_cast<int32_t>(static_cast<int8_t>(u))) : u;
        for (int n = 0; n < cols; ++n) acc[m][n] += x * y[n];
      }
    }
  }
  for (int m = 0; m < rows; ++m) std::memcpy(s.data[c][m], acc[m], 4 * static_cast<size_t>(cols));
}

#define LLMASOS_TILE_CONFIG(cfg) emu_config(cfg)
#define LLMASOS_TILE_LOAD(t, base, stride) emu_load(t, base, static_cast<int64_t>(stride))
#define LLMASOS_TILE_STORE(t, base, stride) emu_store(t, base, static_cast<int64_t>(stride))
#define LLMASOS_TILE_ZERO(t) emu_zero(t)
#define LLMASOS_TILE_DPBSUD(c, a, b) emu_dp(true, false, c, a, b)
#define LLMASOS_TILE_DPBSSD(c, a, b) emu_dp(true, true, c, a, b)
#define LLMASOS_TILE_DPBUSD(c, a, b) emu_dp(false, true, c, a, b)
#define LLMASOS_TILE_DPBUUD(c, a, b) emu_dp(false, false, c, a, b)
#define LLMASOS_TILE_RELEASE() (emu_tiles().configured = false)

#else  // the tile instructions (AT&T operand order: sources first)

#define LLMASOS_TILE_CONFIG(cfg) __asm__ volatile("ldtilecfg %0" ::"m"(*(cfg)) : "memory")
#define LLMASOS_TILE_LOAD(t, base, stride)                                                 \
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #t ::"r"(static_cast<const void*>(base)), \
                   "r"(static_cast<long>(stride))                                          \
                   : "memory")
#define LLMASOS_TILE_STORE(t, base, stride)                                                 \
  __asm__ volatile("tilestored %%tmm" #t ", (%0,%1,1)" ::"r"(static_cast<void*>(base)), \
                   "r"(static_cast<long>(stride))                                         \
                   : "memory")
#define LLMASOS_TILE_ZERO(t) __asm__ volatile("tilezero %%tmm" #t ::: "memory")
#define LLMASOS_TILE_DPBSUD(c, a, b) __asm__ volatile("tdpbsud %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::: "memory")
#define LLMASOS_TILE_DPBSSD(c, a, b) __asm__ volatile("tdpbssd %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::: "memory")
#define LLMASOS_TILE_DPBUSD(c, a, b) __asm__ volatile("tdpbusd %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::: "memory")
#define LLMASOS_TILE_DPBUUD(c, a, b) __asm__ volatile("tdpbuud %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::: "memory")
#define LLMASOS_TILE_RELEASE() __asm__ volatile("tilerelease" ::: "memory")

#endif

}  // namespace
}  // namespace llmasos::cpu::LLMASOS_ISA_NS
