#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// For a block x [rows, cols] (row-major, leading dimension ldx) and shift [cols]:
/// y[r][c] = mask[r] ? double(x[r][c]) - shift[c] : 0 (y dense row-major [rows, cols]), and
/// sums[c] += y[r][c] over the rows with mask[r] != 0, in row order, one thread per column: the
/// sums are bitwise the CPU's row-order float64 sums and do not depend on how the caller splits
/// rows into blocks. Rows with mask[r] == 0 are never read (they may hold NaN). Asynchronous on
/// stream.
void launch_rows_to_shifted_double(const float* x, std::int64_t rows, std::int64_t cols,
                                   std::int64_t ldx, const double* shift, const std::uint8_t* mask,
                                   double* y, double* sums, cudaStream_t stream);

}  // namespace embgeom::kernels
