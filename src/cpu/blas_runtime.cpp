#include "cpu/blas_runtime.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <strings.h>
#include <string>

extern "C" {
char* openblas_get_corename(void);
char* openblas_get_config(void);
}

namespace embgeom {
namespace {

constexpr const char* kReexecMarker = "EMBGEOM_BLAS_REEXEC";
constexpr const char* kNoteVar = "EMBGEOM_BLAS_NOTE";

bool cpu_supports_avx512() {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
    return false;
#endif
}

bool cpu_supports_avx2() {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

bool detected_is_one_of(const std::string& detected, std::initializer_list<const char*> cores) {
    for (const char* c : cores)
        if (strcasecmp(detected.c_str(), c) == 0) return true;
    return false;
}

}  // namespace

std::string coretype_to_force(const std::string& detected, bool cpu_has_avx512, bool cpu_has_avx2) {
    if (cpu_has_avx512) {
        if (detected_is_one_of(detected, {"SkylakeX", "Cooperlake", "SapphireRapids"})) return "";
        return "SkylakeX";
    }
    if (cpu_has_avx2) {
        if (detected_is_one_of(detected, {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"}))
            return "";
        return "Haswell";
    }
    return "";
}

void ensure_fast_blas_kernels(char** argv) {
    if (std::getenv("OPENBLAS_CORETYPE") || std::getenv(kReexecMarker)) return;
    const char* detected_c = openblas_get_corename();
    const std::string detected = detected_c ? detected_c : "";
    const std::string wanted = coretype_to_force(detected, cpu_supports_avx512(), cpu_supports_avx2());
    if (wanted.empty()) return;
    const std::string note = "auto-selected from CPU features; OpenBLAS itself detected " + detected;
    setenv("OPENBLAS_CORETYPE", wanted.c_str(), 1);
    setenv(kReexecMarker, "1", 1);
    setenv(kNoteVar, note.c_str(), 1);
    execv("/proc/self/exe", argv);
    // execv failed (no /proc): carry on with the slow kernels rather than fail the job.
    unsetenv("OPENBLAS_CORETYPE");
}

std::string blas_description() {
    std::string d = "OpenBLAS";
    if (const char* cfg = openblas_get_config()) {
        // "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY ..." -> keep the version only.
        std::string c = cfg;
        const auto sp = c.find(' ');
        const auto sp2 = sp == std::string::npos ? sp : c.find(' ', sp + 1);
        if (sp != std::string::npos) d += " " + c.substr(sp + 1, sp2 - sp - 1);
    }
    const char* core = openblas_get_corename();
    d += std::string(" ") + (core ? core : "?") + " kernels";
    if (const char* note = std::getenv(kNoteVar)) {
        d += std::string(" (") + note + ")";
    } else if (const char* ct = std::getenv("OPENBLAS_CORETYPE")) {
        d += std::string(" (OPENBLAS_CORETYPE=") + ct + " from the environment)";
    }
    return d;
}

}  // namespace embgeom
