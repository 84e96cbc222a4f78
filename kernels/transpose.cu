#include "kernel_utils.cuh"
#include "transpose.cuh"

namespace embgeom::kernels {
namespace {

constexpr int kTile = 32;
constexpr int kRowsPerPass = 8;

// Through a padded shared tile so that both the reads and the writes are coalesced.
__global__ void transpose_kernel(const float* in, std::int64_t rows, std::int64_t cols,
                                 std::int64_t ld_in, float* out, std::int64_t ld_out) {
    __shared__ float t[kTile][kTile + 1];
    const std::int64_t c0 = static_cast<std::int64_t>(blockIdx.x) * kTile;
    const std::int64_t r0 = static_cast<std::int64_t>(blockIdx.y) * kTile;
    for (int k = threadIdx.y; k < kTile; k += kRowsPerPass) {
        const std::int64_t r = r0 + k, c = c0 + threadIdx.x;
        if (r < rows && c < cols) t[k][threadIdx.x] = in[r * ld_in + c];
    }
    __syncthreads();
    for (int k = threadIdx.y; k < kTile; k += kRowsPerPass) {
        const std::int64_t orow = c0 + k, ocol = r0 + threadIdx.x;
        if (orow < cols && ocol < rows) out[orow * ld_out + ocol] = t[threadIdx.x][k];
    }
}

}  // namespace

void launch_transpose(const float* in, std::int64_t rows, std::int64_t cols, std::int64_t ld_in,
                      float* out, std::int64_t ld_out, cudaStream_t stream) {
    if (rows <= 0 || cols <= 0) return;
    const dim3 grid(static_cast<unsigned>((cols + kTile - 1) / kTile),
                    static_cast<unsigned>((rows + kTile - 1) / kTile));
    transpose_kernel<<<grid, dim3(kTile, kRowsPerPass), 0, stream>>>(in, rows, cols, ld_in, out,
                                                                     ld_out);
}

}  // namespace embgeom::kernels
