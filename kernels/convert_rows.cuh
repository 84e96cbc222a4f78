#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// 16-bit GEMM input types (stored as their raw bits in std::uint16_t).
enum class Half16 { kBf16, kFp16 };

/// out[r][c] = x[r][c] rounded to nearest even in fmt; rows with valid[r] == 0 become zeros
/// (valid may be nullptr: every row is kept). When inv_norm is not nullptr, also
/// inv_norm[r] = 1 / ||x_r|| (float64 sum of squares in a fixed order), 0 for zero rows and rows
/// with valid[r] == 0: the scale that turns a raw product into a cosine. x is row-major
/// [rows, cols] with leading dimension ld, out [rows, cols] with leading dimension ld_out.
/// Asynchronous on stream.
void launch_convert_rows(const float* x, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                         const std::uint8_t* valid, Half16 fmt, std::uint16_t* out,
                         std::int64_t ld_out, double* inv_norm, cudaStream_t stream);

/// In place, p[e] from bfloat16 to float16 for e < count. Exact when every value is also a
/// float16 value, which the caller guarantees (engine::Raw16Tracker). Asynchronous on stream.
void launch_bf16_to_fp16(std::uint16_t* p, std::int64_t count, cudaStream_t stream);

}  // namespace embgeom::kernels
