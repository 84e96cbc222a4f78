#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// In place: x_r <- (x_r - center) / ||x_r - center|| for rows with valid[r] != 0, bit for bit as
/// engine::normalize_row (src/engine/row_normalize.cpp) computes it on the host: differences and
/// the sum of squares in float64 in column order without FMA, the quotient rounded once to
/// float32. Rows whose norm is 0 or not finite, and invalid rows, become zero vectors.
/// zero_row[r] = 1 for valid rows whose norm is not > 0 (norm 0, or NaN: such a row also sets
/// *bad_row), 0 otherwise, as the CPU engine (src/cpu/grid_driver.cpp) sets it; for a valid row
/// whose norm is not finite, *bad_row = max(*bad_row, row0 + r) (row0: global index of row 0,
/// for the message).
/// center is [cols] float64 in device memory, or nullptr. x is row-major [rows, cols], leading
/// dimension ld. Asynchronous on stream.
void launch_normalize_rows(float* x, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                           const std::uint8_t* valid, const double* center, std::uint8_t* zero_row,
                           long long row0, long long* bad_row, cudaStream_t stream);

}  // namespace embgeom::kernels
