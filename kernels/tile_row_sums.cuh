#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// For every valid token i = row0 + r: row_sums[i] += the sum of llrint(tile[r][c] * 2^32) over
/// valid tokens j = col0 + c with j != i (engine::cos_fixed, src/engine/fixed_point.hpp): integer
/// sums, exact whatever the order. tile is row-major [rows, cols], leading dimension ld; valid
/// and row_sums are global [V] arrays. Asynchronous on stream.
void launch_tile_row_sums(const float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                          std::int64_t row0, std::int64_t col0, const std::uint8_t* valid,
                          long long* row_sums, cudaStream_t stream);

}  // namespace embgeom::kernels
