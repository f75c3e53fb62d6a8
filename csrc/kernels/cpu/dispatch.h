// Run-time ISA selection: cpuid + XGETBV decide which levels this CPU and OS can run; the best is
// chosen at first use unless LLMASOS_FORCE_ISA names one (an unsupported level is a clear error).
#pragma once
#include <string>
#include <vector>

namespace llmasos::cpu {

// Every level compiled into this build, best last: "generic", "avx2", "avx512", "amx".
std::vector<std::string> compiled_isas();
// Levels that run the tile kernels on a scalar model of the tile unit ("amx_emu", over avx2): for
// tests on machines without AMX. Selectable like a level, never chosen by default.
std::vector<std::string> emulated_isas();
// Whether the amx level can run here, and if not why (for runtime_info).
std::string amx_status();
// The compiled levels this CPU and OS can run.
std::vector<std::string> supported_isas();
// Name of the active level.
std::string active_isa();
// Switch the active level (throws InvalidArgumentError if unknown or unsupported here).
void select_isa(const std::string& name);
// CPU feature flags seen by cpuid (for runtime_info).
std::vector<std::string> cpu_features();

}  // namespace llmasos::cpu
