#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// sums[c] += x[r][c] (as float64) for every row r with mask[r] != 0, rows in order, one chain of
/// additions per column: the result is bitwise the CPU's row-order sum and does not depend on how
/// the caller splits rows into blocks. x is row-major [rows, cols], leading dimension ld.
/// Asynchronous on stream.
void launch_column_sums(const float* x, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                        const std::uint8_t* mask, double* sums, cudaStream_t stream);

}  // namespace embgeom::kernels
