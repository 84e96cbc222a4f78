// The machine's SGEMM rate with the BLAS embgeom links (the ceiling the all-pairs phase is
// measured against). usage: embgeom_sgemm_rate [n=4096] [repeats=3]  -> prints GFLOP/s (best).
#include <cblas.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "cpu/blas_runtime.hpp"

int main(int argc, char** argv) {
    embgeom::ensure_fast_blas_kernels(argv);
    const int n = argc > 1 ? std::atoi(argv[1]) : 4096;
    const int repeats = argc > 2 ? std::atoi(argv[2]) : 3;
    std::vector<float> a(std::size_t(n) * n), b(a.size()), c(a.size());
    std::mt19937 rng(1);
    std::normal_distribution<float> dist;
    for (auto& x : a) x = dist(rng);
    for (auto& x : b) x = dist(rng);
    double best = 0.0;
    for (int r = 0; r < repeats; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a.data(), n, b.data(), n,
                    0.0f, c.data(), n);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, 2.0 * n * double(n) * n / s / 1e9);
    }
    std::printf("%.1f\n", best);
    std::fprintf(stderr, "%s\n", embgeom::blas_description().c_str());
    return 0;
}
