// How fast the result file takes the cosine matrix (--write-matrix), tile by tile, the way the
// engines hand it over: one thread handing 8192 x 8192 tiles (the CUDA engine, an MPI job's rank
// 0 receiving), or every thread handing 1024 x 1024 tiles at once (the CPU engine). Prints the
// seconds per run and the rate in matrix values per second; bench/matrix_write.py runs it beside
// h5py writing the same matrix from numpy.
// usage: embgeom_matrix_write_rate N DTYPE(float16|float32) MODE(one-thread|every-thread) OUT.h5
//        [GZIP level, default 0]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "io/result_file.hpp"

using namespace embgeom;

int main(int argc, char** argv) {
    if (argc != 5 && argc != 6) {
        std::fprintf(stderr, "usage: embgeom_matrix_write_rate N float16|float32 "
                             "one-thread|every-thread OUT.h5 [GZIP]\n");
        return 2;
    }
    const std::int64_t n = std::atoll(argv[1]);
    const MatrixDtype dtype = std::string(argv[2]) == "float16" ? MatrixDtype::kFloat16
                                                                 : MatrixDtype::kFloat32;
    const bool one_thread = std::string(argv[3]) == "one-thread";
    const int gzip = argc == 6 ? std::atoi(argv[5]) : 0;
    const std::int64_t side = one_thread ? 8192 : 1024;
    // Every tile holds the same values, made before the clock starts: what is timed is the file
    // taking them. They are distributed like the cosines of a trained vocabulary (mostly small,
    // slightly positive), so that gzip meets what it meets in a real matrix.
    std::vector<float> values(static_cast<std::size_t>(side * side));
    std::mt19937_64 rng(1);
    std::normal_distribution<float> cosine(0.03f, 0.08f);
    for (float& v : values) v = std::clamp(cosine(rng), -1.0f, 1.0f);
    std::vector<std::pair<std::int64_t, std::int64_t>> tiles;
    for (std::int64_t r0 = 0; r0 < n; r0 += side)
        for (std::int64_t c0 = r0; c0 < n; c0 += side) tiles.emplace_back(r0, c0);

    const auto start = std::chrono::steady_clock::now();
    {
        ResultFile out(argv[4]);
        auto sink = out.create_square_matrix("/cosine/matrix", n, dtype, gzip);
        const int teams = one_thread ? 1 : omp_get_max_threads();
#pragma omp parallel num_threads(teams)
#pragma omp for schedule(dynamic, 1)
        for (std::size_t t = 0; t < tiles.size(); ++t) {
            const auto [r0, c0] = tiles[t];
            const std::int64_t rows = std::min(side, n - r0), cols = std::min(side, n - c0);
            sink->write_tile(r0, c0, MatrixView<const float>(values.data(), rows, cols, side));
        }
        out.commit();
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%lld %s %s gzip %d: %.3f s, %.1f M values/s\n", static_cast<long long>(n),
                argv[2], argv[3], gzip, s, double(n) * double(n) / s * 1e-6);
    return 0;
}
