#include <cmath>

#include "kernel_utils.cuh"
#include "pair_counting.cuh"
#include "tile_row_fold.cuh"
#include "warp_topk.cuh"

namespace embgeom::kernels {
namespace {

constexpr int kThreads = 256;

__global__ void topk_init_kernel(float* sims, std::int64_t* index, std::int64_t count) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
         e < count; e += stride) {
        sims[e] = -INFINITY;
        index[e] = kTopkEmptyIndex;
    }
}

__host__ __device__ inline int pow2_at_least(int n) {
    int p = 1;
    while (p < n) p *= 2;
    return p;
}

// Bitonic sort of p (a power of two) entries, best first.
__device__ void sort_best_first(float* s_sim, std::int64_t* s_idx, int p) {
    for (int size = 2; size <= p; size *= 2) {
        for (int stride = size / 2; stride > 0; stride /= 2) {
            for (int t = threadIdx.x; t < p; t += blockDim.x) {
                const int u = t ^ stride;
                if (u <= t) continue;
                const bool best_first = (t & size) == 0;
                const bool swap = best_first ? better(s_sim[u], s_idx[u], s_sim[t], s_idx[t])
                                             : better(s_sim[t], s_idx[t], s_sim[u], s_idx[u]);
                if (swap) {
                    const float fs = s_sim[t];
                    s_sim[t] = s_sim[u];
                    s_sim[u] = fs;
                    const std::int64_t fi = s_idx[t];
                    s_idx[t] = s_idx[u];
                    s_idx[u] = fi;
                }
            }
            __syncthreads();
        }
    }
}

// The columns c = c0 + u * stride + t (u < N) of one tile row, loads issued together: use[u] is
// false (and v[u] 0) past the row's end, on the row's own token and on invalid tokens. When kSums,
// the used values are added to sum in fixed point (engine::cos_fixed).
template <int N, bool kSums>
__device__ inline void load_columns(const float* row, std::int64_t c0, int stride, int t,
                                    std::int64_t cols, std::int64_t col0, std::int64_t i,
                                    const std::uint8_t* valid, float (&v)[N], bool (&use)[N],
                                    long long& sum) {
#pragma unroll
    for (int u = 0; u < N; ++u) {
        const std::int64_t c = c0 + static_cast<std::int64_t>(u) * stride + t;
        use[u] = c < cols && col0 + c != i && valid[col0 + c];
        v[u] = use[u] ? row[c] : 0.0f;
    }
    if (kSums) {
#pragma unroll
        for (int u = 0; u < N; ++u)
            if (use[u]) sum += __double2ll_rn(static_cast<double>(v[u]) * kCosScale);
    }
}

// Lists of more than 128 slots (the warp kernel below takes the rest): one block per tile row;
// the row is read once, kPerThread columns per thread at a time (loads
// issued together: one load in flight per thread left the kernel latency-bound at ~1/13 of the
// memory bandwidth on an H100).
//
// Top-K: shared memory holds the row's list in [0, k) (sorted, best first) and a buffer of
// candidates in [k, p). A column is buffered only if it beats the list's current worst entry;
// the columns of a chunk are offered in kPerThread rounds of kThreads, and before the buffer could
// overflow (and at the end of the row) list and buffer are sorted together and the best k kept.
// p - k >= 2 * kThreads, so one round always fits after a check that leaves at most
// p - k - kThreads entries.
// Row sums: each thread adds its columns' fixed-point values; the block's total is exact.
constexpr int kPerThread = 8;
constexpr int kChunk = kThreads * kPerThread;

template <bool kSums>
__global__ void tile_row_fold_kernel(const float* tile, std::int64_t ld, std::int64_t rows,
                                     std::int64_t cols, std::int64_t row0, std::int64_t col0,
                                     const std::uint8_t* valid, float* sims, std::int64_t* index,
                                     int k, int p, long long* row_sums) {
    extern __shared__ std::int64_t s_idx[];
    float* s_sim = reinterpret_cast<float*>(s_idx + p);
    __shared__ int s_count;
    __shared__ long long s_warp_sum[kThreads / kWarp];
    const int cap = p - k;

    for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const std::int64_t i = row0 + r;
        if (!valid[i]) continue;  // uniform over the block
        float* list_sim = sims + i * k;
        std::int64_t* list_idx = index + i * k;
        for (int t = threadIdx.x; t < k; t += blockDim.x) {
            s_sim[t] = list_sim[t];
            s_idx[t] = list_idx[t];
        }
        if (threadIdx.x == 0) s_count = 0;
        __syncthreads();

        const float* row = tile + r * ld;
        long long sum = 0;
        for (std::int64_t c0 = 0; c0 < cols; c0 += kChunk) {
            float v[kPerThread];
            bool use[kPerThread];
            load_columns<kPerThread, kSums>(row, c0, kThreads, threadIdx.x, cols, col0, i, valid, v,
                                            use, sum);
            const bool last_chunk = c0 + kChunk >= cols;
#pragma unroll
            for (int u = 0; u < kPerThread; ++u) {
                const std::int64_t j = col0 + c0 + u * kThreads + threadIdx.x;
                bool added = false;
                if (use[u] && better(v[u], j, s_sim[k - 1], s_idx[k - 1])) {
                    const int slot = atomicAdd(&s_count, 1);
                    s_sim[k + slot] = v[u];
                    s_idx[k + slot] = j;
                    added = true;
                }
                // One barrier per round, a second only when the count may call for a sort: once
                // the list is warm most rounds add nothing, and then the count has not changed
                // since its last check (which left it at most cap - kThreads).
                const bool last = last_chunk && u == kPerThread - 1;
                if (!__syncthreads_or(added) && !last) continue;
                const int count = s_count;
                __syncthreads();  // everyone has read s_count before anyone changes it again
                if (count > cap - kThreads || (last && count > 0)) {
                    // Sort list and candidates only, [0, q): sorting all p slots for a few
                    // candidates cost ~2/3 of the kernel's time on an H100 (k = 10, p = 1024).
                    const int q = pow2_at_least(k + count);
                    for (int t = k + count + threadIdx.x; t < q; t += blockDim.x) {
                        s_sim[t] = -INFINITY;
                        s_idx[t] = kTopkEmptyIndex;
                    }
                    __syncthreads();
                    sort_best_first(s_sim, s_idx, q);
                    if (threadIdx.x == 0) s_count = 0;
                    __syncthreads();
                }
            }
        }

        if (kSums) {
            sum = warp_sum(sum);
            if (lane_id() == 0) s_warp_sum[threadIdx.x / kWarp] = sum;
            __syncthreads();
            if (threadIdx.x == 0) {
                long long total = 0;
                for (int w = 0; w < kThreads / kWarp; ++w) total += s_warp_sum[w];
                row_sums[i] += total;
            }
        }
        for (int t = threadIdx.x; t < k; t += blockDim.x) {
            list_sim[t] = s_sim[t];
            list_idx[t] = s_idx[t];
        }
        __syncthreads();  // the next row reuses shared memory
    }
}

// Warp per row, for lists of up to 32 * E slots (every K the engine asks for by default: K = 10,
// K' = 4K = 40 when re-scoring), held in registers as warp_topk.cuh lays them out. Lanes read 32
// consecutive columns per step (coalesced); a ballot of the columns that beat the threshold is
// nearly always empty once the list is warm, so the steady state is a load, a compare and a vote
// per column with no block barrier (the block kernel above needs one per 256 columns).
// Candidates of a step are inserted one at a time in lane order, each re-tested against the
// threshold as it rises; the result is the best k under the total order, so it does not depend
// on that order.
constexpr int kWarpSteps = 8;  // 32-column steps whose loads are issued together

template <int E, bool kList, bool kSums, bool kPairs>
__global__ void tile_row_fold_warp_kernel(const float* tile, std::int64_t ld, std::int64_t rows,
                                          std::int64_t cols, std::int64_t row0, std::int64_t col0,
                                          const std::uint8_t* valid, float* sims,
                                          std::int64_t* index, int k, long long* row_sums,
                                          TilePairStats pairs, bool shared_hist) {
    // The pair statistics as tile_pairs_kernel counts them (a block histogram in shared memory
    // when it fits, flushed once per block), from the values the list already loaded.
    extern __shared__ unsigned int s_hist[];
    if (kPairs) {
        if (shared_hist)
            for (int b = threadIdx.x; b < pairs.hist_bins; b += blockDim.x) s_hist[b] = 0;
        __syncthreads();
    }
    const bool diagonal = row0 == col0;
    const int lane = lane_id();
    for (std::int64_t r = global_warp(); r < rows; r += warp_stride()) {
        const std::int64_t i = row0 + r;
        if (!valid[i]) {  // uniform over the warp
            if (kPairs && lane == 0) pairs.row_dup_count[r] = 0;
            continue;
        }
        float ls[E];
        std::int64_t li[E];
        float th_s = -INFINITY;
        std::int64_t th_i = kTopkEmptyIndex;
        if (kList) warp_list_load<E>(sims + i * k, index + i * k, k, ls, li, th_s, th_i);

        const float* row = tile + r * ld;
        long long sum = 0;
        unsigned long long sq = 0;
        long long dups = 0;
        for (std::int64_t c0 = 0; c0 < cols; c0 += kWarp * kWarpSteps) {
            float v[kWarpSteps];
            bool use[kWarpSteps];
            load_columns<kWarpSteps, kSums>(row, c0, kWarp, lane, cols, col0, i, valid, v, use,
                                            sum);
            if constexpr (kPairs) {
                // Pairs i < j: on a diagonal tile the columns right of the diagonal.
#pragma unroll
                for (int u = 0; u < kWarpSteps; ++u)
                    if (use[u] && (!diagonal || c0 + u * kWarp + lane > r))
                        count_pair(v[u], pairs.hist_bins, pairs.hist_scale,
                                   shared_hist ? s_hist : nullptr, pairs.hist, pairs.dup_min, sq,
                                   dups);
            }
            if constexpr (kList) {
#pragma unroll
                for (int u = 0; u < kWarpSteps; ++u) {
                    const std::int64_t j = col0 + c0 + u * kWarp + lane;
                    unsigned hits = __ballot_sync(kFullMask, use[u] && better(v[u], j, th_s, th_i));
                    while (hits != 0) {
                        const int src = __ffs(static_cast<int>(hits)) - 1;
                        hits &= hits - 1;
                        const float cs = __shfl_sync(kFullMask, v[u], src);
                        const std::int64_t ci = col0 + c0 + u * kWarp + src;
                        // The threshold may have risen since the vote.
                        if (better(cs, ci, th_s, th_i)) warp_insert<E>(ls, li, cs, ci, th_s, th_i);
                    }
                }
            }
        }

        if (kSums) {
            sum = warp_sum(sum);
            if (lane == 0) row_sums[i] += sum;
        }
        if (kPairs) {
            sq = warp_sum(sq);
            dups = warp_sum(dups);
            if (lane == 0) {
                pairs.row_dup_count[r] = dups;
                if (sq) atomicAdd(pairs.cos_sq_fixed, sq);
                if (dups) atomicAdd(pairs.dup_total, static_cast<unsigned long long>(dups));
            }
        }
        if (kList) warp_list_store<E>(ls, li, k, sims + i * k, index + i * k);
    }
    if (kPairs && shared_hist) {
        __syncthreads();
        for (int b = threadIdx.x; b < pairs.hist_bins; b += blockDim.x)
            if (s_hist[b]) atomicAdd(&pairs.hist[b], static_cast<unsigned long long>(s_hist[b]));
    }
}

// Lists of up to this many slots take the warp kernel.
constexpr int kWarpListMaxK = 4 * kWarp;

// The warp kernel for lists of up to 32 E slots (kList), or none, with or without the row sums
// and the pair statistics.
template <int E, bool kList>
void launch_warp_fold(const float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                      std::int64_t row0, std::int64_t col0, const std::uint8_t* valid, float* sims,
                      std::int64_t* index, int k, long long* row_sums, const TilePairStats* pairs,
                      cudaStream_t stream) {
    const unsigned grid = grid_for(rows, kWarpsPerBlock);
    const TilePairStats stats = pairs ? *pairs : TilePairStats{};
    const bool shared_hist = pairs && pairs->hist_bins <= kPairsSharedHistMaxBins;
    const std::size_t shared = shared_hist ? sizeof(unsigned int) * pairs->hist_bins : 0;
    if (row_sums && pairs)
        tile_row_fold_warp_kernel<E, kList, true, true><<<grid, kWarpBlock, shared, stream>>>(
            tile, ld, rows, cols, row0, col0, valid, sims, index, k, row_sums, stats, shared_hist);
    else if (row_sums)
        tile_row_fold_warp_kernel<E, kList, true, false><<<grid, kWarpBlock, 0, stream>>>(
            tile, ld, rows, cols, row0, col0, valid, sims, index, k, row_sums, stats, false);
    else if (pairs)
        tile_row_fold_warp_kernel<E, kList, false, true><<<grid, kWarpBlock, shared, stream>>>(
            tile, ld, rows, cols, row0, col0, valid, sims, index, k, row_sums, stats, shared_hist);
    else
        tile_row_fold_warp_kernel<E, kList, false, false><<<grid, kWarpBlock, 0, stream>>>(
            tile, ld, rows, cols, row0, col0, valid, sims, index, k, row_sums, stats, false);
}

int sort_size(int k) { return pow2_at_least(k + 2 * kThreads); }

}  // namespace

void launch_topk_init(float* sims, std::int64_t* index, std::int64_t count, cudaStream_t stream) {
    if (count <= 0) return;
    topk_init_kernel<<<grid_for(count, 256), 256, 0, stream>>>(sims, index, count);
}

void launch_tile_row_fold(const float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                          std::int64_t row0, std::int64_t col0, const std::uint8_t* valid,
                          float* sims, std::int64_t* index, int k, long long* row_sums,
                          const TilePairStats* pairs, cudaStream_t stream) {
    const bool list = k > 0 && sims && index, sums = row_sums != nullptr;
    if (rows <= 0 || cols <= 0 || !(list || sums || pairs)) return;
    if (!list) {
        launch_warp_fold<1, false>(tile, ld, rows, cols, row0, col0, valid, nullptr, nullptr, 0,
                                   row_sums, pairs, stream);
        return;
    }
    if (k <= kWarpListMaxK) {
        if (k <= kWarp)
            launch_warp_fold<1, true>(tile, ld, rows, cols, row0, col0, valid, sims, index, k,
                                      row_sums, pairs, stream);
        else if (k <= 2 * kWarp)
            launch_warp_fold<2, true>(tile, ld, rows, cols, row0, col0, valid, sims, index, k,
                                      row_sums, pairs, stream);
        else
            launch_warp_fold<4, true>(tile, ld, rows, cols, row0, col0, valid, sims, index, k,
                                      row_sums, pairs, stream);
        return;
    }
    const int p = sort_size(k);
    const std::size_t shared = static_cast<std::size_t>(p) * (sizeof(std::int64_t) + sizeof(float));
    const unsigned grid = grid_for(rows, 1);
    if (sums)
        tile_row_fold_kernel<true><<<grid, kThreads, shared, stream>>>(
            tile, ld, rows, cols, row0, col0, valid, sims, index, k, p, row_sums);
    else
        tile_row_fold_kernel<false><<<grid, kThreads, shared, stream>>>(
            tile, ld, rows, cols, row0, col0, valid, sims, index, k, p, row_sums);
    // Long lists keep their block kernel; the pairs take their own read of the tile.
    if (pairs)
        launch_tile_pairs(tile, ld, rows, cols, row0, col0, valid, pairs->hist_bins,
                          pairs->hist_scale, pairs->hist, pairs->cos_sq_fixed, pairs->dup_min,
                          pairs->row_dup_count, pairs->dup_total, stream);
}

}  // namespace embgeom::kernels
