#include "kernel_utils.cuh"
#include "rows_to_shifted_double.cuh"

namespace embgeom::kernels {
namespace {

__global__ void rows_to_shifted_double_kernel(const float* __restrict__ x, std::int64_t rows,
                                              std::int64_t cols, std::int64_t ldx,
                                              const double* __restrict__ shift,
                                              const std::uint8_t* __restrict__ mask,
                                              double* __restrict__ y, double* __restrict__ sums) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
         c < cols; c += stride) {
        const double s = shift[c];
        double t = sums[c];
        // Consecutive threads take consecutive columns, so every row's loads and stores coalesce;
        // unrolling keeps several rows' loads in flight per thread.
#pragma unroll 4
        for (std::int64_t r = 0; r < rows; ++r) {
            double v = 0.0;
            if (mask[r]) {
                v = static_cast<double>(x[r * ldx + c]) - s;
                t += v;
            }
            y[r * cols + c] = v;
        }
        sums[c] = t;
    }
}

}  // namespace

void launch_rows_to_shifted_double(const float* x, std::int64_t rows, std::int64_t cols,
                                   std::int64_t ldx, const double* shift, const std::uint8_t* mask,
                                   double* y, double* sums, cudaStream_t stream) {
    if (rows <= 0 || cols <= 0) return;
    constexpr int kThreads = 128;
    rows_to_shifted_double_kernel<<<grid_for(cols, kThreads), kThreads, 0, stream>>>(
        x, rows, cols, ldx, shift, mask, y, sums);
}

}  // namespace embgeom::kernels
