#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "tile_pairs.cuh"

namespace embgeom::kernels {

/// Largest K the fold's top-K list supports (its shared-memory sort holds next_pow2(K + 512)
/// entries).
constexpr std::int64_t kTopkMaxK = 1024;
/// Index of an empty top-K slot (its similarity is -inf); sorts after every real neighbour.
constexpr std::int64_t kTopkEmptyIndex = INT64_MAX;

/// Fills count slots with the empty entry (-inf, kTopkEmptyIndex). Asynchronous.
void launch_topk_init(float* sims, std::int64_t* index, std::int64_t count, cudaStream_t stream);

/// Folds one tile into the per-row results in a single read of the tile. For every valid token
/// i = row0 + r the entries are tile[r][c] for valid tokens j = col0 + c, j != i:
/// - when k > 0, the list of i (sims/index [V, k] row-major, slots of row i at i * k) is replaced
///   by the best k of list and entries in the order (similarity descending, index ascending),
///   total over distinct indices, so the result does not depend on scheduling or tile order;
///   k in [1, kTopkMaxK];
/// - when row_sums is not null, row_sums[i] += the sum of llrint(tile[r][c] * 2^32)
///   (engine::cos_fixed, src/engine/fixed_point.hpp): integer sums, exact in any order.
/// - when pairs is not null, the pair statistics of the tile exactly as launch_tile_pairs counts
///   them with the same arguments (pairs i < j only, so this is the fold of a tile's rows I, not
///   of its transpose): for k <= 128, and for the sums alone, in the same read of the tile; for
///   larger k by a launch_tile_pairs after the fold.
/// tile is row-major [rows, cols], leading dimension ld; valid is the global [V] mask.
/// Asynchronous on stream.
void launch_tile_row_fold(const float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                          std::int64_t row0, std::int64_t col0, const std::uint8_t* valid,
                          float* sims, std::int64_t* index, int k, long long* row_sums,
                          const TilePairStats* pairs, cudaStream_t stream);

}  // namespace embgeom::kernels
