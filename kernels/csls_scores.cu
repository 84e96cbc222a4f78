#include "csls_scores.cuh"
#include "kernel_utils.cuh"

namespace embgeom::kernels {
namespace {

constexpr int kThreads = 256;

// One block per row at a time, threads along the columns (coalesced). The _rn intrinsics keep
// nvcc from contracting; 2c is exact, so even a contraction would give the same bits.
__global__ void csls_scores_kernel(float* tile, std::int64_t ld, std::int64_t rows,
                                   std::int64_t cols, std::int64_t row0, std::int64_t col0,
                                   const float* radius) {
    for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        float* row = tile + r * ld;
        const std::int64_t i = row0 + r;
        const float ri = radius[i];
        for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
            const std::int64_t j = col0 + c;
            const float rj = radius[j];
            const float sum = i < j ? __fadd_rn(ri, rj) : __fadd_rn(rj, ri);
            row[c] = __fsub_rn(__fmul_rn(2.0f, row[c]), sum);
        }
    }
}

}  // namespace

void launch_csls_scores(float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                        std::int64_t row0, std::int64_t col0, const float* radius,
                        cudaStream_t stream) {
    if (rows <= 0 || cols <= 0) return;
    csls_scores_kernel<<<grid_for(rows, 1), kThreads, 0, stream>>>(tile, ld, rows, cols, row0, col0,
                                                                   radius);
}

}  // namespace embgeom::kernels
