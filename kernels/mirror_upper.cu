#include "kernel_utils.cuh"
#include "mirror_upper.cuh"

namespace embgeom::kernels {
namespace {

constexpr int kTile = 32;
constexpr int kRowsPerPass = 8;

// Block (bx, by) with by > bx copies the transpose of block (by, bx) of the upper triangle through
// shared memory (coalesced both ways); diagonal blocks mirror their own upper triangle.
__global__ void mirror_upper_kernel(float* tile, std::int64_t ld, std::int64_t n) {
    __shared__ float t[kTile][kTile + 1];
    if (blockIdx.y < blockIdx.x) return;
    const std::int64_t r0 = static_cast<std::int64_t>(blockIdx.y) * kTile;  // lower block rows
    const std::int64_t c0 = static_cast<std::int64_t>(blockIdx.x) * kTile;  // lower block cols
    // Source: upper-triangle block at rows c0.., cols r0..
    for (int k = threadIdx.y; k < kTile; k += kRowsPerPass) {
        const std::int64_t r = c0 + k, c = r0 + threadIdx.x;
        if (r < n && c < n) t[k][threadIdx.x] = tile[r * ld + c];
    }
    __syncthreads();
    for (int k = threadIdx.y; k < kTile; k += kRowsPerPass) {
        const std::int64_t r = r0 + k, c = c0 + threadIdx.x;
        if (r < n && c < n && r > c) tile[r * ld + c] = t[threadIdx.x][k];
    }
}

}  // namespace

void launch_mirror_upper(float* tile, std::int64_t ld, std::int64_t n, cudaStream_t stream) {
    if (n <= 1) return;
    const unsigned blocks = static_cast<unsigned>((n + kTile - 1) / kTile);
    mirror_upper_kernel<<<dim3(blocks, blocks), dim3(kTile, kRowsPerPass), 0, stream>>>(tile, ld,
                                                                                        n);
}

}  // namespace embgeom::kernels
