#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// out[c][r] = in[r][c] for in [rows, cols] (leading dimension ld_in) and out [cols, rows]
/// (leading dimension ld_out); bit-exact copy. rows and cols must be below 2^21 (grid y limit).
/// Asynchronous on stream.
void launch_transpose(const float* in, std::int64_t rows, std::int64_t cols, std::int64_t ld_in,
                      float* out, std::int64_t ld_out, cudaStream_t stream);

}  // namespace embgeom::kernels
