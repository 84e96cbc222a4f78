#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// tile[r][c] = tile[c][r] for r > c: makes a diagonal tile exactly symmetric, its upper triangle
/// being the one value of each pair (GEMM does not promise C[r][c] == C[c][r]; the CPU engine
/// uses the same convention). tile is row-major [n, n], leading dimension ld. Asynchronous.
void launch_mirror_upper(float* tile, std::int64_t ld, std::int64_t n, cudaStream_t stream);

}  // namespace embgeom::kernels
