#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// out[r] = ||x_r - point|| with the differences and their squares in float64; point is [cols]
/// float64 in device memory. x is row-major [rows, cols], leading dimension ld. Asynchronous.
void launch_distances_to_point(const float* x, std::int64_t rows, std::int64_t cols,
                               std::int64_t ld, const double* point, float* out,
                               cudaStream_t stream);

}  // namespace embgeom::kernels
