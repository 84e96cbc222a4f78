#pragma once
// A top-K list held by one warp in registers (nvcc only), shared by the fold of tile rows
// (tile_row_fold.cu) and of tile columns (tile_col_fold.cu).
//
// A list of up to 32 E slots lives right-aligned: position P = e * 32 + lane (in ls[e] / li[e])
// holds slot P - (32 E - k), sorted best first (similarity descending, index ascending), and the
// positions before the list hold a sentinel that ranks before every candidate. So the worst slot
// is always lane 31 of ls[E - 1] (a static register: a dynamic one put the list in local memory),
// and a candidate's position counts the sentinels by itself. Every lane holds the worst slot's
// (sim, index) as the threshold.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "kernel_utils.cuh"

namespace embgeom::kernels {

constexpr double kCosScale = 4294967296.0;  // 2^32, engine::kCosScale
constexpr std::int64_t kSentinelIndex = -1;

__device__ inline bool better(float sa, std::int64_t ia, float sb, std::int64_t ib) {
    return sa > sb || (sa == sb && ia < ib);
}

template <int E>
__device__ inline void warp_threshold(const float (&ls)[E], const std::int64_t (&li)[E],
                                      float& th_s, std::int64_t& th_i) {
    th_s = __shfl_sync(kFullMask, ls[E - 1], kWarp - 1);
    th_i = __shfl_sync(kFullMask, li[E - 1], kWarp - 1);
}

template <int E>
__device__ inline void warp_insert(float (&ls)[E], std::int64_t (&li)[E], float cs, std::int64_t ci,
                                   float& th_s, std::int64_t& th_i) {
    const int lane = lane_id();
    int pos = 0;  // positions that rank before the candidate (sentinels included)
#pragma unroll
    for (int e = 0; e < E; ++e)
        pos += __popc(__ballot_sync(kFullMask, better(ls[e], li[e], cs, ci)));
#pragma unroll
    for (int e = E - 1; e >= 0; --e) {
        // Position P takes P - 1 for P > pos (the last one falls off): lane 0 of ls[e] takes
        // lane 31 of ls[e - 1], still unshifted because rows shift from the last one up.
        float up_s = __shfl_up_sync(kFullMask, ls[e], 1);
        std::int64_t up_i = __shfl_up_sync(kFullMask, li[e], 1);
        if (e > 0) {
            const float carry_s = __shfl_sync(kFullMask, ls[e > 0 ? e - 1 : 0], kWarp - 1);
            const std::int64_t carry_i = __shfl_sync(kFullMask, li[e > 0 ? e - 1 : 0], kWarp - 1);
            if (lane == 0) {
                up_s = carry_s;
                up_i = carry_i;
            }
        }
        const int p = e * kWarp + lane;
        if (p > pos) {
            ls[e] = up_s;
            li[e] = up_i;
        } else if (p == pos) {
            ls[e] = cs;
            li[e] = ci;
        }
    }
    warp_threshold<E>(ls, li, th_s, th_i);
}

// The k slots at sims / index (one token's list) into the warp's registers, and its threshold.
template <int E>
__device__ inline void warp_list_load(const float* sims, const std::int64_t* index, int k,
                                      float (&ls)[E], std::int64_t (&li)[E], float& th_s,
                                      std::int64_t& th_i) {
    const int first = E * kWarp - k;  // position of slot 0
#pragma unroll
    for (int e = 0; e < E; ++e) {
        const int slot = e * kWarp + lane_id() - first;
        ls[e] = slot >= 0 ? sims[slot] : INFINITY;
        li[e] = slot >= 0 ? index[slot] : kSentinelIndex;
    }
    warp_threshold<E>(ls, li, th_s, th_i);
}

// The warp's list back into its k slots.
template <int E>
__device__ inline void warp_list_store(const float (&ls)[E], const std::int64_t (&li)[E], int k,
                                       float* sims, std::int64_t* index) {
    const int first = E * kWarp - k;
#pragma unroll
    for (int e = 0; e < E; ++e) {
        const int slot = e * kWarp + lane_id() - first;
        if (slot >= 0) {
            sims[slot] = ls[e];
            index[slot] = li[e];
        }
    }
}

}  // namespace embgeom::kernels
