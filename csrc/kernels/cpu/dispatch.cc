// Chooses the kernel table: cpuid says what the CPU has, XGETBV says which register states the OS
// saves (a CPU flag without OS support would SIGILL), LLMASOS_FORCE_ISA may force a level. AMX
// tiles also need the process's permission (Linux: arch_prctl(ARCH_REQ_XCOMP_PERM)), asked once
// when the amx level is first considered; without it the avx512 level runs instead.
#include "kernels/cpu/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#if defined(__linux__) && defined(LLMASOS_X86)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "kernels/cpu/kernel_table.h"
#include "llmasos/errors.hpp"

#include "kernels/cpu/cpuid.h"

namespace llmasos::cpu {
// The levels the build compiled (LLMASOS_ISA_LEVELS in CMake): LLMASOS_HAVE_ISA_<level>.
namespace generic { const KernelTable* table(); }
#if defined(LLMASOS_HAVE_ISA_avx2)
namespace avx2 { const KernelTable* table(); }
#endif
#if defined(LLMASOS_HAVE_ISA_avx512)
namespace avx512 { const KernelTable* table(); }
#endif
#if defined(LLMASOS_HAVE_ISA_amx)
namespace amx { const KernelTable* table(); }
#endif
#if defined(LLMASOS_HAVE_ISA_amx_emu)
namespace amx_emu { const KernelTable* table(); }
#endif

namespace {

struct Features {
  bool avx2 = false, fma = false, f16c = false, bmi2 = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool avx512bf16 = false, amx_tile = false, amx_int8 = false, amx_bf16 = false;
  bool os_avx = false, os_avx512 = false, os_amx = false;
};

Features detect() {
  Features f;
#if defined(LLMASOS_X86)
  unsigned a, b, c, d;
  if (cpuid_max() < 1) return f;
  cpuid(1, 0, a, b, c, d);
  bool osxsave = c & (1u << 27);
  f.fma = c & (1u << 12);
  f.f16c = c & (1u << 29);
  bool avx = c & (1u << 28);
  if (osxsave && avx) {
    const unsigned lo = xgetbv0();
    f.os_avx = (lo & 0x6) == 0x6;            // XMM + YMM state
    f.os_avx512 = (lo & 0xe6) == 0xe6;       // + opmask, ZMM_Hi256, Hi16_ZMM
    f.os_amx = (lo & 0x60000) == 0x60000;    // XTILECFG, XTILEDATA
  }
  if (cpuid_max() >= 7) {
    cpuid(7, 0, a, b, c, d);
    f.avx2 = b & (1u << 5);
    f.bmi2 = b & (1u << 8);
    f.avx512f = b & (1u << 16);
    f.avx512dq = b & (1u << 17);
    f.avx512bw = b & (1u << 30);
    f.avx512vl = b & (1u << 31);
    f.avx512vnni = c & (1u << 11);
    f.amx_bf16 = d & (1u << 22);
    f.amx_tile = d & (1u << 24);
    f.amx_int8 = d & (1u << 25);
    unsigned a1, b1, c1, d1;
    cpuid(7, 1, a1, b1, c1, d1);
    f.avx512bf16 = a1 & (1u << 5);
  }
#endif
  return f;
}

const Features& features() {
  static const Features f = detect();
  return f;
}

// Linux lets a process use the tile data state only after asking (XTILEDATA is an XFD-guarded
// feature; the first tile instruction without permission is a fatal signal). Asked once.
enum class AmxPermission { kGranted, kDenied, kUnavailable };

AmxPermission request_amx() {
#if defined(__linux__) && defined(LLMASOS_X86) && defined(SYS_arch_prctl)
  constexpr long kArchGetXcompPerm = 0x1022, kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return AmxPermission::kDenied;
  unsigned long granted = 0;
  if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &granted) != 0) return AmxPermission::kDenied;
  return (granted & (1ul << kXfeatureXtiledata)) ? AmxPermission::kGranted : AmxPermission::kDenied;
#else
  return AmxPermission::kUnavailable;  // no way here to ask: leave the tiles alone
#endif
}

AmxPermission amx_permission() {
  static const AmxPermission p = request_amx();
  return p;
}

bool avx2_ok(const Features& f) { return f.os_avx && f.avx2 && f.fma && f.f16c && f.bmi2; }

bool avx512_ok(const Features& f) {
  return avx2_ok(f) && f.os_avx512 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq &&
         f.avx512vnni;
}

bool amx_hardware(const Features& f) { return avx512_ok(f) && f.amx_tile && f.amx_int8 && f.os_amx; }

bool level_supported(const std::string& name) {
  const Features& f = features();
  if (name == "generic") return true;
#if defined(LLMASOS_X86)
  if (name == "avx2" || name == "amx_emu") return avx2_ok(f);
  if (name == "avx512") return avx512_ok(f);
  if (name == "amx") return amx_hardware(f) && amx_permission() == AmxPermission::kGranted;
#endif
  (void)f;
  return false;
}

const KernelTable* table_for(const std::string& name) {
  if (name == "generic") return generic::table();
#if defined(LLMASOS_HAVE_ISA_avx2)
  if (name == "avx2") return avx2::table();
#endif
#if defined(LLMASOS_HAVE_ISA_avx512)
  if (name == "avx512") return avx512::table();
#endif
#if defined(LLMASOS_HAVE_ISA_amx)
  if (name == "amx") return amx::table();
#endif
#if defined(LLMASOS_HAVE_ISA_amx_emu)
  if (name == "amx_emu") return amx_emu::table();
#endif
  return nullptr;
}

bool is_compiled(const std::string& name) {
  for (const auto& n : compiled_isas())
    if (n == name) return true;
  for (const auto& n : emulated_isas())
    if (n == name) return true;
  return false;
}

// Why `name` cannot be used in this build: an unknown name, or a level this build left out.
std::string not_compiled_reason(const std::string& name) {
  std::string compiled;
  for (const auto& n : compiled_isas()) compiled += (compiled.empty() ? "" : ", ") + n;
  if (name == "generic" || name == "avx2" || name == "avx512" || name == "amx" || name == "amx_emu")
    return "ISA level '" + name + "' is not compiled into this build (compiled: " + compiled + ")";
  return "unknown ISA level '" + name + "' (known: generic, avx2, avx512, amx, amx_emu; compiled: " +
         compiled + ")";
}

// " (reason)" for the amx level, whose absence has several causes.
std::string why_not(const std::string& name) { return name == "amx" ? " (" + amx_status() + ")" : ""; }

std::atomic<const KernelTable*> g_active{nullptr};
std::mutex g_init_mu;

const KernelTable* choose_initial() {
  const char* forced = std::getenv("LLMASOS_FORCE_ISA");
  if (forced && *forced) {
    std::string name(forced);
    if (!is_compiled(name))
      throw InvalidArgumentError("LLMASOS_FORCE_ISA=" + name + ": " + not_compiled_reason(name));
    if (!level_supported(name))
      throw InvalidArgumentError("LLMASOS_FORCE_ISA=" + name +
                                 ": this CPU or its OS does not support that level" + why_not(name));
    return table_for(name);
  }
  const KernelTable* best = generic::table();
  for (const auto& n : supported_isas()) best = table_for(n);
  return best;
}

}  // namespace

std::vector<std::string> compiled_isas() {
  std::vector<std::string> out{"generic"};
#if defined(LLMASOS_HAVE_ISA_avx2)
  out.push_back("avx2");
#endif
#if defined(LLMASOS_HAVE_ISA_avx512)
  out.push_back("avx512");
#endif
#if defined(LLMASOS_HAVE_ISA_amx)
  out.push_back("amx");
#endif
  return out;
}

std::vector<std::string> emulated_isas() {
  std::vector<std::string> out;
#if defined(LLMASOS_HAVE_ISA_amx_emu)
  out.push_back("amx_emu");
#endif
  return out;
}

std::string amx_status() {
#if defined(LLMASOS_HAVE_ISA_amx)
  const Features& f = features();
  if (!(f.amx_tile && f.amx_int8)) return "no AMX-INT8 on this CPU";
  if (!f.os_amx) return "the OS does not enable the tile state (XCR0)";
  if (!avx512_ok(f)) return "AMX without the AVX-512 level: not used";
  switch (amx_permission()) {
    case AmxPermission::kGranted: return "available";
    case AmxPermission::kDenied: return "the OS refused tile permission (arch_prctl)";
    default: return "no way to ask the OS for tile permission here";
  }
#else
  return "not compiled into this build";
#endif
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> out;
  for (const auto& n : compiled_isas())
    if (level_supported(n)) out.push_back(n);
  return out;
}

const KernelTable& kernels() {
  const KernelTable* t = g_active.load(std::memory_order_acquire);
  if (t) return *t;
  std::lock_guard<std::mutex> lock(g_init_mu);
  t = g_active.load(std::memory_order_relaxed);
  if (!t) {
    t = choose_initial();
    g_active.store(t, std::memory_order_release);
  }
  return *t;
}

std::string active_isa() { return kernels().isa; }

void select_isa(const std::string& name) {
  // Check support before building a table: building runs code compiled for that level.
  if (!is_compiled(name)) throw InvalidArgumentError(not_compiled_reason(name));
  if (!level_supported(name))
    throw InvalidArgumentError("ISA level '" + name + "' is not supported by this CPU or its OS" + why_not(name));
  g_active.store(table_for(name), std::memory_order_release);
}

std::vector<std::string> cpu_features() {
  const Features& f = features();
  std::vector<std::string> out;
  auto add = [&](bool on, const char* n) { if (on) out.push_back(n); };
  add(f.os_avx && f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.bmi2, "bmi2");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vl, "avx512vl");
  add(f.avx512dq, "avx512dq");
  add(f.avx512vnni, "avx512vnni");
  add(f.avx512bf16, "avx512bf16");
  add(f.amx_tile, "amx_tile");
  add(f.amx_int8, "amx_int8");
  add(f.amx_bf16, "amx_bf16");
  add(f.os_avx512, "os_avx512_state");
  return out;
}

}  // namespace llmasos::cpu
