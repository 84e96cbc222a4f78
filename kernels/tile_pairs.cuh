#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// A pair (i < j) with cosine >= the duplicate threshold, as written by launch_tile_dup_write.
struct TilePair {
    std::int64_t i;
    std::int64_t j;
    float cosine;
};

/// Histograms up to this many bins count in shared memory first; larger ones go straight to
/// global atomics.
constexpr int kPairsSharedHistMaxBins = 8192;

/// Where the pair statistics of a tile go (the outputs of launch_tile_pairs, below), for
/// launch_tile_row_fold, which counts them in the same read of the tile as the lists.
struct TilePairStats {
    int hist_bins = 0;
    float hist_scale = 0.0f;  ///< 0.5f * hist_bins
    unsigned long long* hist = nullptr;
    unsigned long long* cos_sq_fixed = nullptr;
    float dup_min = 0.0f;
    long long* row_dup_count = nullptr;
    unsigned long long* dup_total = nullptr;
};

/// Folds the pairs of one tile that the result counts: tokens i = row0 + r and j = col0 + c, both
/// valid, i < j (on a diagonal tile, row0 == col0, only c > r; an off-diagonal tile has
/// row0 + rows <= col0, so every pair counts). Per pair:
///  - hist[histogram_bin(v, hist_scale, hist_bins)] += 1 (64-bit counts, global [hist_bins]);
///  - *cos_sq_fixed += int((v * v) * 2^24 + 0.5f) in float32, bit for bit engine::cos_sq_fixed
///    (src/engine/fixed_point.hpp); integer atomics, so the sum is exact and independent of order
///    (a tile of at most 2^30 pairs cannot overflow 64 bits);
///  - counts v >= dup_min (the smallest float >= the duplicate threshold) into row_dup_count[r]
///    (one entry per tile row, 0 for rows without pairs) and into *dup_total.
/// tile is row-major [rows, cols], leading dimension ld; valid is the global [V] flag array.
/// Asynchronous on stream.
void launch_tile_pairs(const float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                       std::int64_t row0, std::int64_t col0, const std::uint8_t* valid,
                       int hist_bins, float hist_scale, unsigned long long* hist,
                       unsigned long long* cos_sq_fixed, float dup_min, long long* row_dup_count,
                       unsigned long long* dup_total, cudaStream_t stream);

/// Writes the duplicate pairs of one tile in (i, j) order. The pairs of tile row r are numbered
/// from row_dup_offset[r] (an exclusive prefix sum of the row_dup_count from launch_tile_pairs
/// with the same arguments); pair number q is stored at out[q - first] when
/// first <= q < first + capacity, the rest are skipped. Asynchronous on stream.
void launch_tile_dup_write(const float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                           std::int64_t row0, std::int64_t col0, const std::uint8_t* valid,
                           float dup_min, const long long* row_dup_count,
                           const long long* row_dup_offset, long long first, long long capacity,
                           TilePair* out, cudaStream_t stream);

}  // namespace embgeom::kernels
