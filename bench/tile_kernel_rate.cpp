// One core: embgeom's tile kernels (src/cpu/tile_gemm.hpp) beside OpenBLAS sgemm on the same
// 512 x 512 x d tile product, in interleaved rounds (the machines here are noisy: compare within a
// round). OpenBLAS gets its operands row-major, as a caller would hand them; embgeom's kernels read
// the packed panels the engine makes once. Every kernel this CPU supports is run.
// usage: OMP_NUM_THREADS=1 embgeom_tile_kernel_rate [d ...]   (default d = 384 768)
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "cpu/blas_runtime.hpp"
#include "cpu/packed_panels.hpp"
#include "cpu/tile_gemm.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::int64_t G = 512;

template <class F>
double gflops(F&& run, std::int64_t d) {
    const int iters = static_cast<int>(4e9 / (2.0 * G * G * d)) + 1;
    const auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i) run();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count() / iters;
    return 2.0 * G * G * d / s * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace embgeom::cpu;
    embgeom::ensure_fast_blas_kernels(argv);
    std::vector<std::int64_t> dims;
    for (int i = 1; i < argc; ++i) dims.push_back(std::atoll(argv[i]));
    if (dims.empty()) dims = {384, 768};
    std::vector<TileKernel> kernels{TileKernel::kPortable};
    if (best_tile_kernel() != TileKernel::kPortable) kernels = {TileKernel::kAvx2};
    if (best_tile_kernel() == TileKernel::kAvx512) kernels.push_back(TileKernel::kAvx512);
    std::printf("one core, %lld x %lld tiles, GFLOP/s (best of 5 interleaved rounds); %s\n",
                static_cast<long long>(G), static_cast<long long>(G),
                embgeom::blas_description().c_str());
    for (const std::int64_t d : dims) {
        std::vector<float> x(2 * G * d), packed(x.size()), C(G * G);
        std::mt19937 rng(1);
        std::normal_distribution<float> g;
        for (float& v : x) v = g(rng);
        pack_rows(x.data(), 2 * G, 0, d, packed.data());
        std::vector<double> best(kernels.size() + 1, 0.0);
        for (int round = 0; round < 5; ++round) {
            best[0] = std::max(best[0], gflops([&] {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, G, G, d, 1.0f, x.data(), d,
                            x.data() + G * d, d, 0.0f, C.data(), G);
            }, d));
            for (std::size_t k = 0; k < kernels.size(); ++k)
                best[k + 1] = std::max(best[k + 1], gflops([&] {
                    packed_tile_gemm(packed.data(), packed.data() + G * d, G, d, C.data(),
                                     kernels[k]);
                }, d));
        }
        std::printf("d %5lld: OpenBLAS sgemm %.1f", static_cast<long long>(d), best[0]);
        for (std::size_t k = 0; k < kernels.size(); ++k)
            std::printf(", embgeom %s %.1f", to_string(kernels[k]), best[k + 1]);
        std::printf("\n");
    }
    return 0;
}
