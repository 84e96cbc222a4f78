#include <cmath>

#include "direction_extremes.cuh"
#include "kernel_utils.cuh"

namespace embgeom::kernels {
namespace {

// (value, index) under "larger value, then lower index" (sign = 1) or "smaller value, then lower
// index" (sign = -1); index -1 is empty and ranks last.
__device__ inline bool ranks_before(float va, std::int64_t ia, float vb, std::int64_t ib,
                                    bool largest) {
    if (ia < 0) return false;
    if (ib < 0) return true;
    const bool strictly = largest ? va > vb : va < vb;
    return strictly || (va == vb && ia < ib);
}

__device__ inline void warp_best(float& v, std::int64_t& i, bool largest) {
    for (int m = kWarp / 2; m > 0; m /= 2) {
        const float ov = __shfl_xor_sync(kFullMask, v, m);
        const long long oi = __shfl_xor_sync(kFullMask, static_cast<long long>(i), m);
        if (ranks_before(ov, oi, v, i, largest)) {
            v = ov;
            i = oi;
        }
    }
}

__global__ void extremes_init_kernel(float* max_value, std::int64_t* max_index, float* min_value,
                                     std::int64_t* min_index, std::int64_t count) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
         e < count; e += stride) {
        max_value[e] = -INFINITY;
        min_value[e] = INFINITY;
        max_index[e] = -1;
        min_index[e] = -1;
    }
}

// Warp per direction, lanes along the rows (coalesced). Each lane sees its rows in increasing
// order, so strict comparisons keep its lowest index among equal values; the butterfly then
// applies the full order. Starting from -inf / +inf with index -1 is the CPU's rule.
__global__ void direction_extremes_kernel(const float* scores, std::int64_t ld, std::int64_t dirs,
                                          std::int64_t rows, std::int64_t row0,
                                          const std::uint8_t* valid, float* max_value,
                                          std::int64_t* max_index, float* min_value,
                                          std::int64_t* min_index) {
    const int lane = lane_id();
    for (std::int64_t q = global_warp(); q < dirs; q += warp_stride()) {
        const float* s = scores + q * ld;
        float hi = -INFINITY, lo = INFINITY;
        std::int64_t hi_i = -1, lo_i = -1;
        for (std::int64_t r = lane; r < rows; r += kWarp) {
            if (!valid[r]) continue;
            const float v = s[r];
            if (v > hi) {
                hi = v;
                hi_i = row0 + r;
            }
            if (v < lo) {
                lo = v;
                lo_i = row0 + r;
            }
        }
        warp_best(hi, hi_i, true);
        warp_best(lo, lo_i, false);
        if (lane == 0) {
            if (ranks_before(hi, hi_i, max_value[q], max_index[q], true)) {
                max_value[q] = hi;
                max_index[q] = hi_i;
            }
            if (ranks_before(lo, lo_i, min_value[q], min_index[q], false)) {
                min_value[q] = lo;
                min_index[q] = lo_i;
            }
        }
    }
}

}  // namespace

void launch_extremes_init(float* max_value, std::int64_t* max_index, float* min_value,
                          std::int64_t* min_index, std::int64_t count, cudaStream_t stream) {
    if (count <= 0) return;
    extremes_init_kernel<<<grid_for(count, 256), 256, 0, stream>>>(max_value, max_index, min_value,
                                                                   min_index, count);
}

void launch_direction_extremes(const float* scores, std::int64_t ld, std::int64_t dirs,
                               std::int64_t rows, std::int64_t row0, const std::uint8_t* valid,
                               float* max_value, std::int64_t* max_index, float* min_value,
                               std::int64_t* min_index, cudaStream_t stream) {
    if (dirs <= 0 || rows <= 0) return;
    direction_extremes_kernel<<<grid_for(dirs, kWarpsPerBlock), kWarpBlock, 0, stream>>>(
        scores, ld, dirs, rows, row0, valid, max_value, max_index, min_value, min_index);
}

}  // namespace embgeom::kernels
