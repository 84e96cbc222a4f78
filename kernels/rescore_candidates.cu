#include "kernel_utils.cuh"
#include "rescore_candidates.cuh"
#include "tile_row_fold.cuh"

namespace embgeom::kernels {
namespace {

// Explicit _rn intrinsics: nothing may be contracted or reordered, or the host replica
// (engine::rescore_dot) would no longer give the same bits.
__device__ inline float rescore_dot(const float* x, const float* y, std::int64_t cols, int lane) {
    float s = 0.0f;
    for (std::int64_t c = lane; c < cols; c += kWarp) s = __fmaf_rn(x[c], y[c], s);
    for (int m = kWarp / 2; m > 0; m /= 2) s = __fadd_rn(s, __shfl_xor_sync(kFullMask, s, m));
    return s;
}

__global__ void rescore_lists_kernel(const float* xn, std::int64_t rows, std::int64_t cols,
                                     std::int64_t ld, const std::int64_t* index, int kc,
                                     float* sims) {
    const int lane = lane_id();
    const std::int64_t slots = rows * kc;
    for (std::int64_t e = global_warp(); e < slots; e += warp_stride()) {
        const std::int64_t j = index[e];
        if (j == kTopkEmptyIndex) continue;
        const float s = rescore_dot(xn + (e / kc) * ld, xn + j * ld, cols, lane);
        if (lane == 0) sims[e] = s;
    }
}

__global__ void rescore_pairs_kernel(const float* a, std::int64_t i0, const float* b,
                                     std::int64_t j0, std::int64_t cols, std::int64_t ld,
                                     TilePair* pairs, std::int64_t count) {
    const int lane = lane_id();
    for (std::int64_t q = global_warp(); q < count; q += warp_stride()) {
        const TilePair p = pairs[q];
        const float s = rescore_dot(a + (p.i - i0) * ld, b + (p.j - j0) * ld, cols, lane);
        if (lane == 0) pairs[q].cosine = s;
    }
}

}  // namespace

void launch_rescore_lists(const float* xn, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                          const std::int64_t* index, int kc, float* sims, cudaStream_t stream) {
    if (rows <= 0 || kc <= 0) return;
    rescore_lists_kernel<<<grid_for(rows * kc, kWarpsPerBlock), kWarpBlock, 0, stream>>>(
        xn, rows, cols, ld, index, kc, sims);
}

void launch_rescore_pairs(const float* a, std::int64_t i0, const float* b, std::int64_t j0,
                          std::int64_t cols, std::int64_t ld, TilePair* pairs, std::int64_t count,
                          cudaStream_t stream) {
    if (count <= 0) return;
    rescore_pairs_kernel<<<grid_for(count, kWarpsPerBlock), kWarpBlock, 0, stream>>>(
        a, i0, b, j0, cols, ld, pairs, count);
}

}  // namespace embgeom::kernels
