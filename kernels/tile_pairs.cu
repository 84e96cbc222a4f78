#include "kernel_utils.cuh"
#include "pair_counting.cuh"
#include "tile_pairs.cuh"

namespace embgeom::kernels {
namespace {

// One warp per tile row; per-block histogram in shared memory when it fits (use_shared), flushed
// once per block. A block sees at most one tile (< 2^32 pairs), so 32-bit shared counts suffice.
__global__ void tile_pairs_kernel(const float* tile, std::int64_t ld, std::int64_t rows,
                                  std::int64_t cols, std::int64_t row0, std::int64_t col0,
                                  const std::uint8_t* valid, int bins, float scale, bool use_shared,
                                  unsigned long long* hist, unsigned long long* cos_sq_fixed,
                                  float dup_min, long long* row_dup_count,
                                  unsigned long long* dup_total) {
    extern __shared__ unsigned int s_hist[];
    if (use_shared)
        for (int b = threadIdx.x; b < bins; b += blockDim.x) s_hist[b] = 0;
    __syncthreads();

    const int lane = lane_id();
    const bool diagonal = row0 == col0;
    for (std::int64_t r = global_warp(); r < rows; r += warp_stride()) {
        const std::int64_t i = row0 + r;
        unsigned long long sq = 0;
        long long dups = 0;
        if (valid[i]) {
            const float* row = tile + r * ld;
            for (std::int64_t c = (diagonal ? r + 1 : 0) + lane; c < cols; c += kWarp) {
                if (!valid[col0 + c]) continue;
                count_pair(row[c], bins, scale, use_shared ? s_hist : nullptr, hist, dup_min, sq,
                           dups);
            }
        }
        sq = warp_sum(sq);
        dups = warp_sum(dups);
        if (lane == 0) {
            row_dup_count[r] = dups;
            if (sq) atomicAdd(cos_sq_fixed, sq);
            if (dups) atomicAdd(dup_total, static_cast<unsigned long long>(dups));
        }
    }

    if (use_shared) {
        __syncthreads();
        for (int b = threadIdx.x; b < bins; b += blockDim.x)
            if (s_hist[b]) atomicAdd(&hist[b], static_cast<unsigned long long>(s_hist[b]));
    }
}

// One warp per tile row with pairs; a ballot numbers the hits of each 32-column chunk in column
// order, so pairs land at their (i, j)-ordered positions whatever the scheduling.
__global__ void tile_dup_write_kernel(const float* tile, std::int64_t ld, std::int64_t rows,
                                      std::int64_t cols, std::int64_t row0, std::int64_t col0,
                                      const std::uint8_t* valid, float dup_min,
                                      const long long* row_dup_count,
                                      const long long* row_dup_offset, long long first,
                                      long long capacity, TilePair* out) {
    const int lane = lane_id();
    const bool diagonal = row0 == col0;
    for (std::int64_t r = global_warp(); r < rows; r += warp_stride()) {
        const long long count = row_dup_count[r];
        long long pos = row_dup_offset[r];
        if (count == 0 || pos >= first + capacity || pos + count <= first) continue;
        const std::int64_t i = row0 + r;
        const float* row = tile + r * ld;
        for (std::int64_t c0 = diagonal ? r + 1 : 0; c0 < cols; c0 += kWarp) {
            const std::int64_t c = c0 + lane;
            float v = 0.0f;
            bool hit = false;
            if (c < cols && valid[col0 + c]) {
                v = row[c];
                hit = v >= dup_min;
            }
            const unsigned ballot = __ballot_sync(kFullMask, hit);
            if (hit) {
                const long long q = pos + __popc(ballot & ((1u << lane) - 1u));
                if (q >= first && q < first + capacity) out[q - first] = TilePair{i, col0 + c, v};
            }
            pos += __popc(ballot);
        }
    }
}

}  // namespace

void launch_tile_pairs(const float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                       std::int64_t row0, std::int64_t col0, const std::uint8_t* valid,
                       int hist_bins, float hist_scale, unsigned long long* hist,
                       unsigned long long* cos_sq_fixed, float dup_min, long long* row_dup_count,
                       unsigned long long* dup_total, cudaStream_t stream) {
    if (rows <= 0 || cols <= 0) return;
    const bool use_shared = hist_bins <= kPairsSharedHistMaxBins;
    const std::size_t shared = use_shared ? sizeof(unsigned int) * hist_bins : 0;
    tile_pairs_kernel<<<grid_for(rows, kWarpsPerBlock), kWarpBlock, shared, stream>>>(
        tile, ld, rows, cols, row0, col0, valid, hist_bins, hist_scale, use_shared, hist,
        cos_sq_fixed, dup_min, row_dup_count, dup_total);
}

void launch_tile_dup_write(const float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                           std::int64_t row0, std::int64_t col0, const std::uint8_t* valid,
                           float dup_min, const long long* row_dup_count,
                           const long long* row_dup_offset, long long first, long long capacity,
                           TilePair* out, cudaStream_t stream) {
    if (rows <= 0 || cols <= 0 || capacity <= 0) return;
    tile_dup_write_kernel<<<grid_for(rows, kWarpsPerBlock), kWarpBlock, 0, stream>>>(
        tile, ld, rows, cols, row0, col0, valid, dup_min, row_dup_count, row_dup_offset, first,
        capacity, out);
}

}  // namespace embgeom::kernels
