#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// Turns a tile of cosines into CSLS scores in place: with i = row0 + r and j = col0 + c,
/// tile[r][c] = fl(fl(2 tile[r][c]) - fl(r_lo + r_hi)), r_lo = radius[min(i, j)] and
/// r_hi = radius[max(i, j)], in explicit round-to-nearest float32 operations: bit for bit the
/// host's csls_score (src/geometry/csls.hpp) of the same cosine, and symmetric in (i, j). Cells
/// of invalid rows (whose radius may be NaN) get whatever the arithmetic gives; the folds skip
/// them. tile is row-major [rows, cols], leading dimension ld; radius [V] in device memory.
/// Asynchronous on stream.
void launch_csls_scores(float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                        std::int64_t row0, std::int64_t col0, const float* radius,
                        cudaStream_t stream);

}  // namespace embgeom::kernels
