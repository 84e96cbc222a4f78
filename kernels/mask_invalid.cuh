#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// Sets tile[r][c] = NaN wherever token row0 + r or token col0 + c is invalid (valid is the
/// global [V] flag array). tile is row-major [rows, cols], leading dimension ld. Asynchronous.
void launch_mask_invalid(float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                         std::int64_t row0, std::int64_t col0, const std::uint8_t* valid,
                         cudaStream_t stream);

}  // namespace embgeom::kernels
