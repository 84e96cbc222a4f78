#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// tile[r][c] = float(tile[r][c] * row_scale[r] * col_scale[c]), the products in float64 and one
/// rounding to float32: turns a tile of raw products C_ij into cosines C_ij / (|x_i| |x_j|)
/// given the inverse norms. tile is row-major [rows, cols], leading dimension ld; row_scale
/// [rows] and col_scale [cols] in device memory. Asynchronous on stream.
void launch_scale_tile(float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                       const double* row_scale, const double* col_scale, cudaStream_t stream);

}  // namespace embgeom::kernels
