#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// norms[r] = ||x_r|| (float64 accumulation) and finite[r] = 1 when every element of row r is
/// finite; non-finite rows get norm NaN. x is row-major [rows, cols] with leading dimension ld.
/// Asynchronous on stream.
void launch_row_norms(const float* x, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                      float* norms, std::uint8_t* finite, cudaStream_t stream);

}  // namespace embgeom::kernels
