#pragma once
// Getting OpenBLAS's fast kernels without the user doing anything.
// Debian's OpenBLAS 0.3.21 does not recognise some AVX-512 CPUs and falls back to its "Prescott"
// kernels (about 6x slower SGEMM). OpenBLAS reads OPENBLAS_CORETYPE only when it loads, so when
// it runs slow kernels on a CPU whose features allow fast ones, the process re-executes itself
// once with OPENBLAS_CORETYPE set. A choice already in the environment is always respected.
#include <string>

namespace embgeom {

/// The OpenBLAS core type to force, or "" to leave OpenBLAS's own choice: given the core OpenBLAS
/// detected and the CPU's features, the widest kernels the CPU supports when OpenBLAS runs
/// narrower ones.
std::string coretype_to_force(const std::string& detected, bool cpu_has_avx512, bool cpu_has_avx2);

/// Call first thing in main(). May replace the process (execv) and never returns in that case.
void ensure_fast_blas_kernels(char** argv);

/// e.g. "OpenBLAS 0.3.21 SkylakeX kernels (auto-selected from CPU features: avx512f)".
std::string blas_description();

}  // namespace embgeom
