#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// Largest k launch_tile_col_fold takes (its lists live in registers, kernels/warp_topk.cuh).
constexpr int kColFoldMaxK = 128;

/// The fold of launch_tile_row_fold applied to the transpose of the tile, without writing the
/// transpose: for every valid token j = col0 + c the entries are tile[r][c] for valid tokens
/// i = row0 + r, i != j; the list of j (when k > 0: sims/index [V, k], k <= kColFoldMaxK) and
/// row_sums[j] (when not null) are updated exactly as launch_tile_row_fold would update them from
/// the transposed tile, bit for bit. tile is row-major [rows, cols], leading dimension ld.
/// Asynchronous on stream.
void launch_tile_col_fold(const float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                          std::int64_t row0, std::int64_t col0, const std::uint8_t* valid,
                          float* sims, std::int64_t* index, int k, long long* row_sums,
                          cudaStream_t stream);

}  // namespace embgeom::kernels
