#include <cmath>

#include "kernel_utils.cuh"
#include "select_topk.cuh"
#include "tile_row_fold.cuh"
#include "warp_topk.cuh"

namespace embgeom::kernels {
namespace {

// A warp per row: the list starts empty in registers (warp_topk.cuh's layout), the candidates are
// offered 32 at a time with a ballot against the threshold and inserted one at a time, as the
// folds do, so the result is the best L under the total order whatever the candidates' order.
template <int E>
__global__ void select_topk_kernel(const std::int64_t* cand_index, const float* cand_sim,
                                   std::int64_t rows, int kc, std::int64_t k, int keep,
                                   std::int64_t* out_index, float* out_sim) {
    const int lane = lane_id();
    const int first = E * kWarp - keep;  // register position of slot 0
    for (std::int64_t r = global_warp(); r < rows; r += warp_stride()) {
        float ls[E];
        std::int64_t li[E];
#pragma unroll
        for (int e = 0; e < E; ++e) {
            const bool slot = e * kWarp + lane >= first;
            ls[e] = slot ? -INFINITY : INFINITY;
            li[e] = slot ? kTopkEmptyIndex : kSentinelIndex;
        }
        float th_s;
        std::int64_t th_i;
        warp_threshold<E>(ls, li, th_s, th_i);

        const std::int64_t* idx = cand_index + r * kc;
        const float* sim = cand_sim + r * kc;
        for (int c0 = 0; c0 < kc; c0 += kWarp) {
            const int q = c0 + lane;
            const std::int64_t j = q < kc ? idx[q] : -1;
            const float s = q < kc ? sim[q] : NAN;
            const bool use = j >= 0 && j != kTopkEmptyIndex && !isnan(s);
            unsigned hits = __ballot_sync(kFullMask, use && better(s, j, th_s, th_i));
            while (hits != 0) {
                const int src = __ffs(static_cast<int>(hits)) - 1;
                hits &= hits - 1;
                const float cs = __shfl_sync(kFullMask, s, src);
                const std::int64_t ci = __shfl_sync(kFullMask, j, src);
                if (better(cs, ci, th_s, th_i)) warp_insert<E>(ls, li, cs, ci, th_s, th_i);
            }
        }

        std::int64_t* oi = out_index + r * k;
        float* os = out_sim + r * k;
#pragma unroll
        for (int e = 0; e < E; ++e) {
            const int slot = e * kWarp + lane - first;
            if (slot < 0) continue;
            const bool filled = li[e] != kTopkEmptyIndex;
            oi[slot] = filled ? li[e] : -1;
            os[slot] = filled ? ls[e] : NAN;
        }
        for (std::int64_t slot = keep + lane; slot < k; slot += kWarp) {
            oi[slot] = -1;
            os[slot] = NAN;
        }
    }
}

}  // namespace

void launch_select_topk(const std::int64_t* cand_index, const float* cand_sim, std::int64_t rows,
                        int kc, std::int64_t k, std::int64_t* out_index, float* out_sim,
                        cudaStream_t stream) {
    const int keep = static_cast<int>(k < kc ? k : kc);
    if (rows <= 0 || keep <= 0) return;
    const unsigned grid = grid_for(rows, kWarpsPerBlock);
    if (keep <= kWarp)
        select_topk_kernel<1><<<grid, kWarpBlock, 0, stream>>>(cand_index, cand_sim, rows, kc, k,
                                                               keep, out_index, out_sim);
    else if (keep <= 2 * kWarp)
        select_topk_kernel<2><<<grid, kWarpBlock, 0, stream>>>(cand_index, cand_sim, rows, kc, k,
                                                               keep, out_index, out_sim);
    else
        select_topk_kernel<4><<<grid, kWarpBlock, 0, stream>>>(cand_index, cand_sim, rows, kc, k,
                                                               keep, out_index, out_sim);
}

}  // namespace embgeom::kernels
