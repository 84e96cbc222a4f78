#pragma once
// The CPU all-pairs tile product: C = A B^T for two ranges of G rows of a packed table
// (packed_panels.hpp), with micro-kernels of our own instead of BLAS. Every C element is one
// fused multiply-add chain over k = 0 .. d-1 from zero, in that order, on every instruction set:
// the tiles are bit for bit the same whatever the tile side, thread count or CPU (AVX-512, AVX2
// or the portable loop), and the operands are never packed again per tile. Measured on the dev
// machine (Zen 5, one core): 245-254 GFLOP/s against OpenBLAS sgemm's 221-238 (SkylakeX kernels)
// on the same 512-row tiles, d = 384 to 4096; on Zen 4 (one core, 512-row tiles, d = 384 / 768)
// 104-115 against OpenBLAS SkylakeX's 105 (4096^3), the AVX2 kernel 82-95 against Haswell's 101.
#include <cstdint>

namespace embgeom::cpu {

/// The instruction sets the tile product can use.
enum class TileKernel { kAvx512, kAvx2, kPortable };

/// The fastest kernel this CPU supports.
TileKernel best_tile_kernel();
const char* to_string(TileKernel k);

/// Which elements of a tile packed_tile_gemm must compute.
enum class TilePart {
    kWhole,
    /// Those on and above the diagonal (q >= r) only, for a diagonal tile (a == b), where every
    /// pair above has its twin below: the kernels skip the register blocks that lie wholly below
    /// the diagonal (47% of a 512-row tile). The elements below are unspecified.
    kUpperTriangle,
};

/// C[r * G + q] = sum_k a[r][k] * b[q][k] for r, q < G, as one fma chain per element. a and b
/// point at rows that start a panel of the packed layout (row offsets multiple of kPanelRows);
/// G is a multiple of kPanelRows. C is row-major G x G.
void packed_tile_gemm(const float* a, const float* b, std::int64_t G, std::int64_t d, float* C,
                      TileKernel kernel = best_tile_kernel(), TilePart part = TilePart::kWhole);

}  // namespace embgeom::cpu
