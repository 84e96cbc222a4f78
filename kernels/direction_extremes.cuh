#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// Empties count running extremes: max_value = -inf, min_value = +inf, indices -1.
/// Asynchronous on stream.
void launch_extremes_init(float* max_value, std::int64_t* max_index, float* min_value,
                          std::int64_t* min_index, std::int64_t count, cudaStream_t stream);

/// Folds one tile of projections into the running extremes of its directions. scores is
/// row-major [dirs, rows] (leading dimension ld): scores[q][r] = u_q . y_(row0 + r). For each
/// direction q, over the rows r with valid[r] != 0, the largest score (ties: lowest row) and the
/// smallest (ties: lowest row) replace max_* [q] and min_* [q] when they rank before them under
/// the same order, as the CPU's fold does: a candidate v enters an empty slot only if
/// v > -inf (resp. v < +inf), so NaN never wins. Folding tiles in any order gives the same
/// result. valid points at the tile's first row; every array is in device memory; each
/// direction is touched by one warp. Asynchronous on stream.
void launch_direction_extremes(const float* scores, std::int64_t ld, std::int64_t dirs,
                               std::int64_t rows, std::int64_t row0, const std::uint8_t* valid,
                               float* max_value, std::int64_t* max_index, float* min_value,
                               std::int64_t* min_index, cudaStream_t stream);

}  // namespace embgeom::kernels
