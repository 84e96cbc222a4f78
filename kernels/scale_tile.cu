#include "kernel_utils.cuh"
#include "scale_tile.cuh"

namespace embgeom::kernels {
namespace {

constexpr int kThreads = 256;

// One block per row at a time, threads along the columns: coalesced, and no index division.
__global__ void scale_tile_kernel(float* tile, std::int64_t ld, std::int64_t rows,
                                  std::int64_t cols, const double* row_scale,
                                  const double* col_scale) {
    for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        float* row = tile + r * ld;
        const double s = row_scale[r];
        for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x)
            row[c] = __double2float_rn(
                __dmul_rn(__dmul_rn(static_cast<double>(row[c]), s), col_scale[c]));
    }
}

}  // namespace

void launch_scale_tile(float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                       const double* row_scale, const double* col_scale, cudaStream_t stream) {
    if (rows <= 0 || cols <= 0) return;
    scale_tile_kernel<<<grid_for(rows, 1), kThreads, 0, stream>>>(tile, ld, rows, cols, row_scale,
                                                                  col_scale);
}

}  // namespace embgeom::kernels
