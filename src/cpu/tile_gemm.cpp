#include "cpu/tile_gemm.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define EMBGEOM_TILE_X86 1
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "cpu/packed_panels.hpp"
#include "embgeom/errors.hpp"

namespace embgeom::cpu {
namespace {

constexpr std::int64_t P = kPanelRows;

#if defined(EMBGEOM_TILE_X86)
// --- AVX-512: 8 rows x 32 columns (one B panel) in 16 zmm accumulators ------------------------
// a: 8 consecutive rows inside an A panel (stride P per k); b: a whole B panel.
__attribute__((target("avx512f"))) inline void micro_avx512(const float* __restrict a,
                                                            const float* __restrict b,
                                                            std::int64_t d, float* __restrict c,
                                                            std::int64_t ldc) {
    __m512 acc[8][2];
    for (int r = 0; r < 8; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (std::int64_t k = 0; k < d; ++k) {
        const __m512 b0 = _mm512_loadu_ps(b + k * P), b1 = _mm512_loadu_ps(b + k * P + 16);
#pragma GCC unroll 8
        for (int r = 0; r < 8; ++r) {
            const __m512 x = _mm512_set1_ps(a[k * P + r]);
            acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
        }
    }
    for (int r = 0; r < 8; ++r) {
        _mm512_storeu_ps(c + r * ldc, acc[r][0]);
        _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);
    }
}

__attribute__((target("avx512f"))) void tile_avx512(const float* a, const float* b,
                                                     std::int64_t G, std::int64_t d, float* C,
                                                     bool upper) {
    // One B panel (L2-resident) against every 8-row slice of A; for the upper triangle only the
    // slices whose first row is not below the panel's last column.
    for (std::int64_t j = 0; j < G; j += P) {
        const std::int64_t rows = upper ? std::min(G, j + P) : G;
        for (std::int64_t i = 0; i < rows; i += 8)
            micro_avx512(a + (i / P) * P * d + i % P, b + j * d, d, C + i * G + j, G);
    }
}

// --- AVX2 + FMA: 4 rows x 24 columns in 12 ymm accumulators ----------------------------------
// (4 x 16, 8 accumulators, only covered the FMA latency: 215 against OpenBLAS Haswell's 230-234
// GFLOP/s on the dev machine's two cores.) Column groups of 8 lie inside one panel each; a group
// of 24 may straddle two panels, so each group has its own pointer. NV groups (3, or 1-2 for the
// tile's last columns). Values k0 .. k1 - 1 of the chains: from zero when kFirst, else continuing
// from the partial sums in c (a float stored and loaded back is the same float, so the chain is
// the same fma chain).
template <int NV, bool kFirst>
__attribute__((target("avx2,fma"))) inline void micro_avx2(const float* __restrict a,
                                                           const float* const* b, std::int64_t k0,
                                                           std::int64_t k1, float* __restrict c,
                                                           std::int64_t ldc) {
    __m256 acc[4][NV];
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r)
#pragma GCC unroll 3
        for (int v = 0; v < NV; ++v)
            acc[r][v] = kFirst ? _mm256_setzero_ps() : _mm256_loadu_ps(c + r * ldc + 8 * v);
    for (std::int64_t k = k0; k < k1; ++k) {
        __m256 bv[NV];
#pragma GCC unroll 3
        for (int v = 0; v < NV; ++v) bv[v] = _mm256_loadu_ps(b[v] + k * P);
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r) {
            const __m256 x = _mm256_broadcast_ss(a + k * P + r);
#pragma GCC unroll 3
            for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(x, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r)
#pragma GCC unroll 3
        for (int v = 0; v < NV; ++v) _mm256_storeu_ps(c + r * ldc + 8 * v, acc[r][v]);
}

template <int NV>
__attribute__((target("avx2,fma"))) inline void micro_avx2(const float* a, const float* const* b,
                                                           std::int64_t k0, std::int64_t k1,
                                                           float* c, std::int64_t ldc) {
    if (k0 == 0)
        micro_avx2<NV, true>(a, b, k0, k1, c, ldc);
    else
        micro_avx2<NV, false>(a, b, k0, k1, c, ldc);
}

// The chains run in steps of kAvx2Depth values: a 24-column stripe of B over that many k (two
// cache lines per k in the panel layout, 8 KiB; lines 128 bytes apart use half of L1's sets) then
// stays in L1 while every 4-row slice of A goes past it. Over the whole depth the stripe (48 KiB
// at d = 384) came from L2 for every slice. One Zen 4 core, 512-row tiles, interleaved runs:
// 76-81 GFLOP/s at d = 384 and 768 without steps, 80-89 in steps of 128, 82-95 in steps of 64
// (OpenBLAS Haswell sgemm: 101; this kernel at d <= 64, where the stripe fits anyway: 103-107).
constexpr std::int64_t kAvx2Depth = 64;

__attribute__((target("avx2,fma"))) void tile_avx2(const float* a, const float* b, std::int64_t G,
                                                   std::int64_t d, float* C, bool upper) {
    const auto group = [&](std::int64_t col) { return b + (col / P) * P * d + col % P; };
    for (std::int64_t j = 0; j < G;) {
        const std::int64_t width = std::min<std::int64_t>(24, G - j);  // 24, or 8 / 16 at the end
        const float* groups[3] = {group(j), group(j + 8), group(j + 16)};
        const std::int64_t rows = upper ? std::min(G, j + width) : G;
        for (std::int64_t k0 = 0; k0 < d; k0 += kAvx2Depth) {
            const std::int64_t k1 = std::min(d, k0 + kAvx2Depth);
            for (std::int64_t i = 0; i < rows; i += 4) {
                const float* ai = a + (i / P) * P * d + i % P;
                float* ci = C + i * G + j;
                if (width == 24)
                    micro_avx2<3>(ai, groups, k0, k1, ci, G);
                else if (width == 16)
                    micro_avx2<2>(ai, groups, k0, k1, ci, G);
                else
                    micro_avx2<1>(ai, groups, k0, k1, ci, G);
            }
        }
        j += width;
    }
}

#endif  // EMBGEOM_TILE_X86

// --- Portable: the definition itself -----------------------------------------------------------
void tile_portable(const float* a, const float* b, std::int64_t G, std::int64_t d, float* C,
                   bool upper) {
    for (std::int64_t i = 0; i < G; ++i)
        for (std::int64_t j = upper ? i : 0; j < G; ++j) {
            float s = 0.0f;
            for (std::int64_t k = 0; k < d; ++k)
                s = std::fma(a[packed_index(i, k, d)], b[packed_index(j, k, d)], s);
            C[i * G + j] = s;
        }
}

}  // namespace

TileKernel best_tile_kernel() {
    static const TileKernel best = [] {
        // EMBGEOM_TILE_KERNEL=avx2|portable runs a slower kernel (benchmarks, tests of the
        // fallbacks on an AVX-512 machine); the results are the same bits.
#if !defined(EMBGEOM_TILE_X86)
        return TileKernel::kPortable;
#else
        if (const char* forced = std::getenv("EMBGEOM_TILE_KERNEL")) {
            const std::string f = forced;
            if (f == "portable") return TileKernel::kPortable;
            if (f == "avx2" && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
                return TileKernel::kAvx2;
        }
        if (__builtin_cpu_supports("avx512f")) return TileKernel::kAvx512;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return TileKernel::kAvx2;
        return TileKernel::kPortable;
#endif
    }();
    return best;
}

const char* to_string(TileKernel k) {
    switch (k) {
        case TileKernel::kAvx512: return "avx512";
        case TileKernel::kAvx2: return "avx2";
        case TileKernel::kPortable: return "portable";
    }
    return "?";
}

void packed_tile_gemm(const float* a, const float* b, std::int64_t G, std::int64_t d, float* C,
                      TileKernel kernel, TilePart part) {
    const bool upper = part == TilePart::kUpperTriangle;
    EMBGEOM_EXPECTS(G > 0 && G % P == 0, "tile side a multiple of the panel height");
    if (d == 0) {
        std::fill(C, C + G * G, 0.0f);
        return;
    }
    switch (kernel) {
#if defined(EMBGEOM_TILE_X86)
        case TileKernel::kAvx512: return tile_avx512(a, b, G, d, C, upper);
        case TileKernel::kAvx2: return tile_avx2(a, b, G, d, C, upper);
#else
        case TileKernel::kAvx512:
        case TileKernel::kAvx2:
#endif
        case TileKernel::kPortable: return tile_portable(a, b, G, d, C, upper);
    }
}

}  // namespace embgeom::cpu
