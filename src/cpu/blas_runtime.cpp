#include "cpu/blas_runtime.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

extern "C" {
char* openblas_get_corename(void);
char* openblas_get_config(void);
void openblas_set_num_threads(int num_threads);
}

namespace embgeom {
namespace {

constexpr const char* kReexecMarker = "EMBGEOM_BLAS_REEXEC";
constexpr const char* kNoteVar = "EMBGEOM_BLAS_NOTE";

/// The best OpenBLAS core type this CPU's features allow, or "" when there is nothing to gain.
std::string best_coretype_for_cpu() {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
    return "";
}

/// Whether OpenBLAS's detected core already runs kernels at least as wide as `wanted`.
bool already_fast(const std::string& detected, const std::string& wanted) {
    static const char* const kAvx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
    static const char* const kAvx2[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake",
                                        "SapphireRapids"};
    auto in = [&](const char* const* list, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i)
            if (strcasecmp(detected.c_str(), list[i]) == 0) return true;
        return false;
    };
    if (wanted == "SkylakeX") return in(kAvx512, 3);
    return in(kAvx2, 5);
}

}  // namespace

void ensure_fast_blas_kernels(char** argv) {
    if (std::getenv("OPENBLAS_CORETYPE") || std::getenv(kReexecMarker)) return;
    const std::string wanted = best_coretype_for_cpu();
    const char* detected_c = openblas_get_corename();
    const std::string detected = detected_c ? detected_c : "";
    if (wanted.empty() || already_fast(detected, wanted)) return;
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

void set_blas_threads(int threads) {
    if (threads > 0) openblas_set_num_threads(threads);
}

}  // namespace embgeom
