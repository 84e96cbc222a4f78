// The CPU tile product on the packed layout: every kernel this CPU runs gives, bit for bit, one
// fma chain over k per element (the definition), and that is a float64 dot product to float32
// rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "cpu/packed_panels.hpp"
#include "cpu/tile_gemm.hpp"
#include "support/test_support.hpp"

namespace embgeom::cpu {
namespace {

std::vector<TileKernel> kernels_here() {
    std::vector<TileKernel> k{TileKernel::kPortable};
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) k.push_back(TileKernel::kAvx2);
    if (__builtin_cpu_supports("avx512f")) k.push_back(TileKernel::kAvx512);
#endif
    return k;
}

TEST(PackedPanels, PackUnpackAndZeroRoundTrip) {
    const std::int64_t n = 77, d = 5;
    std::vector<float> x(n * d);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) + 0.5f;
    std::vector<float> packed(((n + kPanelRows - 1) / kPanelRows) * kPanelRows * d, -1.0f);
    pack_rows(x.data(), 40, 0, d, packed.data());
    pack_rows(x.data() + 40 * d, n - 40, 40, d, packed.data());
    zero_packed_rows(n, (n + kPanelRows - 1) / kPanelRows * kPanelRows, d, packed.data());
    std::vector<float> row(d);
    for (std::int64_t r = 0; r < n; ++r) {
        unpack_row(packed.data(), r, d, row.data());
        for (std::int64_t k = 0; k < d; ++k) EXPECT_EQ(row[k], x[r * d + k]);
    }
    unpack_row(packed.data(), n, d, row.data());
    for (float v : row) EXPECT_EQ(v, 0.0f);
    // A panel-aligned range starts at row * d, as in a row-major array.
    EXPECT_EQ(packed_index(64, 0, d), 64 * d);
}

TEST(TileGemm, EveryKernelIsTheFmaChainBitForBitAndNearFloat64) {
    std::mt19937_64 rng(test::fresh_seed());
    std::normal_distribution<float> g;
    for (const std::int64_t d : {1, 3, 17, 64, 301}) {
        for (const std::int64_t G : {32, 64, 128}) {
            const std::int64_t n = 3 * G;
            std::vector<float> x(n * d);
            for (float& v : x) v = g(rng);
            std::vector<float> packed(n * d);
            pack_rows(x.data(), n, 0, d, packed.data());
            // Tile (I = 0, J = 2) and the diagonal tile (1, 1).
            for (const auto& [I, J] : {std::pair<std::int64_t, std::int64_t>{0, 2}, {1, 1}}) {
                std::vector<float> want(G * G);
                for (std::int64_t r = 0; r < G; ++r)
                    for (std::int64_t q = 0; q < G; ++q) {
                        float s = 0.0f;
                        double s64 = 0.0;
                        for (std::int64_t k = 0; k < d; ++k) {
                            const float a = x[(I * G + r) * d + k], b = x[(J * G + q) * d + k];
                            s = std::fma(a, b, s);
                            s64 += static_cast<double>(a) * b;
                        }
                        want[r * G + q] = s;
                        ASSERT_NEAR(s, s64, 1e-5 * d * (1.0 + std::fabs(s64)));
                    }
                for (const TileKernel kernel : kernels_here()) {
                    SCOPED_TRACE(std::string(to_string(kernel)) + " d " + std::to_string(d) +
                                 " G " + std::to_string(G));
                    std::vector<float> C(G * G, NAN);
                    packed_tile_gemm(packed.data() + I * G * d, packed.data() + J * G * d, G, d,
                                     C.data(), kernel);
                    EXPECT_EQ(std::memcmp(C.data(), want.data(), sizeof(float) * G * G), 0);
                    if (I != J) continue;
                    // The diagonal tile's upper triangle alone: the same bits on and above it.
                    std::vector<float> U(G * G, NAN);
                    packed_tile_gemm(packed.data() + I * G * d, packed.data() + J * G * d, G, d,
                                     U.data(), kernel, TilePart::kUpperTriangle);
                    for (std::int64_t r = 0; r < G; ++r)
                        ASSERT_EQ(std::memcmp(U.data() + r * G + r, want.data() + r * G + r,
                                              sizeof(float) * (G - r)),
                                  0)
                            << "row " << r;
                }
            }
        }
    }
}

TEST(TileGemm, NoColumnsGiveZerosAndBadTileSidesAreRefused) {
    std::vector<float> C(32 * 32, 1.0f);
    packed_tile_gemm(nullptr, nullptr, 32, 0, C.data());
    for (float v : C) EXPECT_EQ(v, 0.0f);
    EXPECT_ANY_THROW(packed_tile_gemm(C.data(), C.data(), 30, 1, C.data()));
}

}  // namespace
}  // namespace embgeom::cpu
