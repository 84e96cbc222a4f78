#include "kernel_utils.cuh"
#include "mask_invalid.cuh"

namespace embgeom::kernels {
namespace {

__global__ void mask_invalid_kernel(float* tile, std::int64_t ld, std::int64_t rows,
                                    std::int64_t cols, std::int64_t row0, std::int64_t col0,
                                    const std::uint8_t* valid) {
    const std::int64_t n = rows * cols;
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
         e += stride) {
        const std::int64_t r = e / cols, c = e % cols;
        if (!valid[row0 + r] || !valid[col0 + c]) tile[r * ld + c] = __int_as_float(0x7fc00000);
    }
}

}  // namespace

void launch_mask_invalid(float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                         std::int64_t row0, std::int64_t col0, const std::uint8_t* valid,
                         cudaStream_t stream) {
    if (rows <= 0 || cols <= 0) return;
    constexpr int kThreads = 256;
    mask_invalid_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, stream>>>(
        tile, ld, rows, cols, row0, col0, valid);
}

}  // namespace embgeom::kernels
