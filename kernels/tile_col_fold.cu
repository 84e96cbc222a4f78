#include "tile_col_fold.cuh"
#include "tile_row_fold.cuh"
#include "warp_topk.cuh"

namespace embgeom::kernels {
namespace {

// A block of kColWarps warps folds CW columns per warp (so kColWarps * CW adjacent columns) over
// every row of the tile. The rows come in chunks of kChunkRows, staged through shared memory
// with coalesced loads (a warp reading one column straight from the tile would touch a 32-byte
// sector per value); each warp then reads its columns out of shared memory 32 rows at a time,
// a row per lane (the odd row stride keeps those reads free of bank conflicts), and folds them
// into its lists as the row fold's warp kernel does: a ballot per 32 rows, candidates inserted
// one at a time. The transpose this replaces wrote and re-read the whole tile.
constexpr int kColWarps = 8;
constexpr int kBlockThreads = kColWarps * kWarp;
constexpr int kChunkRows = 128;
constexpr int kSteps = kChunkRows / kWarp;

template <int E, int CW, bool kList, bool kSums>
__global__ void tile_col_fold_kernel(const float* tile, std::int64_t ld, std::int64_t rows,
                                     std::int64_t cols, std::int64_t row0, std::int64_t col0,
                                     const std::uint8_t* valid, float* sims, std::int64_t* index,
                                     int k, long long* row_sums) {
    constexpr int kBlockCols = kColWarps * CW;
    constexpr int kRowsPerPass = kBlockThreads / kBlockCols;
    static_assert(kBlockThreads % kBlockCols == 0 && kChunkRows % kRowsPerPass == 0,
                  "whole loads per thread");
    const int load_col = static_cast<int>(threadIdx.x) % kBlockCols;
    const int load_row = static_cast<int>(threadIdx.x) / kBlockCols;
    __shared__ float s_tile[kChunkRows][kBlockCols + 1];
    const int lane = lane_id();
    const int warp = static_cast<int>(threadIdx.x) / kWarp;

    for (std::int64_t cb = static_cast<std::int64_t>(blockIdx.x) * kBlockCols; cb < cols;
         cb += static_cast<std::int64_t>(gridDim.x) * kBlockCols) {
        const bool load_col_ok = cb + load_col < cols;
        float ls[CW][E];
        std::int64_t li[CW][E];
        float th_s[CW];
        std::int64_t th_i[CW];
        long long sum[CW];
        bool live[CW];  // uniform over the warp
        std::int64_t j[CW];
#pragma unroll
        for (int q = 0; q < CW; ++q) {
            const std::int64_t c = cb + warp * CW + q;
            j[q] = col0 + c;
            live[q] = c < cols && valid[j[q]];
            th_s[q] = -INFINITY;
            th_i[q] = kTopkEmptyIndex;
            sum[q] = 0;
            if (kList && live[q])
                warp_list_load<E>(sims + j[q] * k, index + j[q] * k, k, ls[q], li[q], th_s[q],
                                  th_i[q]);
        }

        for (std::int64_t r0c = 0; r0c < rows; r0c += kChunkRows) {
            __syncthreads();  // every warp has read the previous chunk
            // Thread t loads column t % kBlockCols of every kRowsPerPass-th row, from one pointer:
            // a compile-time trip count issues every load of the chunk before the first is
            // waited for (blocks are always kBlockThreads wide).
            const float* src = tile + (r0c + load_row) * ld + cb + load_col;
#pragma unroll
            for (int u = 0; u < kChunkRows / kRowsPerPass; ++u) {
                const int rr = u * kRowsPerPass + load_row;
                s_tile[rr][load_col] =
                    load_col_ok && r0c + rr < rows ? src[u * kRowsPerPass * ld] : 0.0f;
            }
            __syncthreads();
            bool row_ok[kSteps];
#pragma unroll
            for (int s = 0; s < kSteps; ++s) {
                const std::int64_t r = r0c + s * kWarp + lane;
                row_ok[s] = r < rows && valid[row0 + r];
            }
#pragma unroll
            for (int q = 0; q < CW; ++q) {
                if (!live[q]) continue;
#pragma unroll
                for (int s = 0; s < kSteps; ++s) {
                    const std::int64_t i = row0 + r0c + s * kWarp + lane;
                    const bool use = row_ok[s] && i != j[q];
                    const float v = use ? s_tile[s * kWarp + lane][warp * CW + q] : 0.0f;
                    if (kSums && use) sum[q] += __double2ll_rn(static_cast<double>(v) * kCosScale);
                    if constexpr (kList) {
                        unsigned hits =
                            __ballot_sync(kFullMask, use && better(v, i, th_s[q], th_i[q]));
                        while (hits != 0) {
                            const int src = __ffs(static_cast<int>(hits)) - 1;
                            hits &= hits - 1;
                            const float cs = __shfl_sync(kFullMask, v, src);
                            const std::int64_t ci = row0 + r0c + s * kWarp + src;
                            // The threshold may have risen since the vote.
                            if (better(cs, ci, th_s[q], th_i[q]))
                                warp_insert<E>(ls[q], li[q], cs, ci, th_s[q], th_i[q]);
                        }
                    }
                }
            }
        }

#pragma unroll
        for (int q = 0; q < CW; ++q) {
            if (!live[q]) continue;
            if (kSums) {
                const long long total = warp_sum(sum[q]);
                if (lane == 0) row_sums[j[q]] += total;
            }
            if (kList) warp_list_store<E>(ls[q], li[q], k, sims + j[q] * k, index + j[q] * k);
        }
    }
}

template <int E, int CW, bool kList>
void launch_col_fold(const float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                     std::int64_t row0, std::int64_t col0, const std::uint8_t* valid, float* sims,
                     std::int64_t* index, int k, long long* row_sums, cudaStream_t stream) {
    const unsigned grid = grid_for(cols, kColWarps * CW);
    if (row_sums)
        tile_col_fold_kernel<E, CW, kList, true><<<grid, kBlockThreads, 0, stream>>>(
            tile, ld, rows, cols, row0, col0, valid, sims, index, k, row_sums);
    else
        tile_col_fold_kernel<E, CW, kList, false><<<grid, kBlockThreads, 0, stream>>>(
            tile, ld, rows, cols, row0, col0, valid, sims, index, k, row_sums);
}

}  // namespace

void launch_tile_col_fold(const float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                          std::int64_t row0, std::int64_t col0, const std::uint8_t* valid,
                          float* sims, std::int64_t* index, int k, long long* row_sums,
                          cudaStream_t stream) {
    const bool list = k > 0 && sims && index;
    if (rows <= 0 || cols <= 0 || !(list || row_sums)) return;
    // Two columns per warp where the lists are short: twice the blocks for the same tile.
    if (!list)
        launch_col_fold<1, 2, false>(tile, ld, rows, cols, row0, col0, valid, nullptr, nullptr, 0,
                                     row_sums, stream);
    else if (k <= kWarp)
        launch_col_fold<1, 2, true>(tile, ld, rows, cols, row0, col0, valid, sims, index, k,
                                    row_sums, stream);
    else if (k <= 2 * kWarp)
        launch_col_fold<2, 2, true>(tile, ld, rows, cols, row0, col0, valid, sims, index, k,
                                    row_sums, stream);
    else
        launch_col_fold<4, 1, true>(tile, ld, rows, cols, row0, col0, valid, sims, index, k,
                                    row_sums, stream);
}

}  // namespace embgeom::kernels
