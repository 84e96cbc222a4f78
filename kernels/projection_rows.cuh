#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// Prepares rows for the extremeness projections, in place. For every row r of x (row-major
/// [rows, cols], leading dimension ld): when valid[r], x[r][c] becomes
/// float(double(x[r][c]) - center[c]) (round to nearest, as the host does; left as it is when
/// center is null) and hash[r] a 64-bit hash of the row's raw bits as they were (equal rows give
/// equal hashes; a match is only a hint); other rows become zeros with hash 0. valid [rows],
/// hash [rows] and center [cols] (or null) in device memory. Asynchronous on stream.
void launch_projection_rows(float* x, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                            const std::uint8_t* valid, const double* center, std::uint64_t* hash,
                            cudaStream_t stream);

}  // namespace embgeom::kernels
