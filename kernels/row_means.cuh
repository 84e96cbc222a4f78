#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// out[r] = float((x^_r . S - self_r) / (n_valid - 1)), self_r = 0 for zero rows (zero_row[r])
/// and 1 otherwise: the mean cosine of row r to every other valid row, bit for bit as
/// engine::dot_with_sum and engine::row_mean_identity compute it (the dot in float64, columns in
/// order, without FMA). xn: normalised rows [rows, cols], leading dimension ld; S: [cols] float64.
/// NaN for invalid rows and when n_valid < 2. Asynchronous on stream.
void launch_row_means(const float* xn, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                      const std::uint8_t* valid, const std::uint8_t* zero_row,
                      const double* normalized_sum, std::int64_t n_valid, float* out,
                      cudaStream_t stream);

}  // namespace embgeom::kernels
