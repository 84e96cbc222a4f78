#include "kernel_utils.cuh"
#include "row_means.cuh"

namespace embgeom::kernels {
namespace {

// One thread per row, columns in order, as the host does (see normalize_rows.cu).
__global__ void row_means_kernel(const float* xn, std::int64_t rows, std::int64_t cols,
                                 std::int64_t ld, const std::uint8_t* valid,
                                 const std::uint8_t* zero_row, const double* sum,
                                 std::int64_t n_valid, float* out) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
         r < rows; r += stride) {
        if (!valid[r] || n_valid < 2) {
            out[r] = __int_as_float(0x7fc00000);
            continue;
        }
        const float* row = xn + r * ld;
        double dot = 0.0;
        for (std::int64_t c = 0; c < cols; ++c)
            dot = __dadd_rn(dot, __dmul_rn(static_cast<double>(row[c]), sum[c]));
        const double self = zero_row[r] ? 0.0 : 1.0;
        out[r] =
            __double2float_rn(__ddiv_rn(__dsub_rn(dot, self), static_cast<double>(n_valid - 1)));
    }
}

}  // namespace

void launch_row_means(const float* xn, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                      const std::uint8_t* valid, const std::uint8_t* zero_row,
                      const double* normalized_sum, std::int64_t n_valid, float* out,
                      cudaStream_t stream) {
    if (rows <= 0) return;
    constexpr int kThreads = 128;
    row_means_kernel<<<grid_for(rows, kThreads), kThreads, 0, stream>>>(
        xn, rows, cols, ld, valid, zero_row, normalized_sum, n_valid, out);
}

}  // namespace embgeom::kernels
