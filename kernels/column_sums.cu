#include "column_sums.cuh"
#include "kernel_utils.cuh"

namespace embgeom::kernels {
namespace {

__global__ void column_sums_kernel(const float* x, std::int64_t rows, std::int64_t cols,
                                   std::int64_t ld, const std::uint8_t* mask, double* sums) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
         c < cols; c += stride) {
        double s = sums[c];
        for (std::int64_t r = 0; r < rows; ++r)
            if (mask[r]) s += static_cast<double>(x[r * ld + c]);
        sums[c] = s;
    }
}

}  // namespace

void launch_column_sums(const float* x, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                        const std::uint8_t* mask, double* sums, cudaStream_t stream) {
    if (rows <= 0 || cols <= 0) return;
    constexpr int kThreads = 128;
    column_sums_kernel<<<grid_for(cols, kThreads), kThreads, 0, stream>>>(x, rows, cols, ld, mask,
                                                                          sums);
}

}  // namespace embgeom::kernels
