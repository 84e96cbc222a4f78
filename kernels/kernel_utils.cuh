#pragma once
// Device helpers shared by the kernels (nvcc only). Warp-per-row kernels use blocks of
// kWarpsPerBlock warps and 64-bit grid-stride loops over rows.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace embgeom::kernels {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;
constexpr int kWarpBlock = kWarp * kWarpsPerBlock;
constexpr unsigned kFullMask = 0xffffffffu;
// Grid-stride loops make any grid correct; this only bounds the launch size.
constexpr std::int64_t kMaxBlocks = 65535;

inline unsigned grid_for(std::int64_t work_items, std::int64_t items_per_block) {
    const std::int64_t blocks = (work_items + items_per_block - 1) / items_per_block;
    return static_cast<unsigned>(std::max<std::int64_t>(1, std::min(blocks, kMaxBlocks)));
}

__device__ inline std::int64_t global_warp() {
    return (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
}
__device__ inline std::int64_t warp_stride() {
    return static_cast<std::int64_t>(gridDim.x) * blockDim.x / kWarp;
}
__device__ inline int lane_id() { return static_cast<int>(threadIdx.x % kWarp); }

// Butterfly sum: every lane ends with the same value (a + b == b + a at each step), and the
// order of additions is fixed, so the result is deterministic.
template <class T>
__device__ inline T warp_sum(T v) {
    for (int m = kWarp / 2; m > 0; m /= 2) v += __shfl_xor_sync(kFullMask, v, m);
    return v;
}

}  // namespace embgeom::kernels
