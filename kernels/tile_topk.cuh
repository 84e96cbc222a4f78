#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// Largest K the top-K kernel supports (its shared-memory sort holds next_pow2(K + 512) entries).
constexpr std::int64_t kTopkMaxK = 1024;
/// Index of an empty top-K slot (its similarity is -inf); sorts after every real neighbour.
constexpr std::int64_t kTopkEmptyIndex = INT64_MAX;

/// Fills count slots with the empty entry (-inf, kTopkEmptyIndex). Asynchronous.
void launch_topk_init(float* sims, std::int64_t* index, std::int64_t count, cudaStream_t stream);

/// Merges one tile into the running per-row top-K lists. For every valid token i = row0 + r the
/// candidates are tile[r][c] for valid tokens j = col0 + c, j != i; the list of i
/// (sims/index [V, K] row-major, slots of row i at i * K) is replaced by the best K of list and
/// candidates in the order (similarity descending, index ascending). That order is total over
/// distinct indices, so the result does not depend on thread scheduling or tile order.
/// K in [1, kTopkMaxK]. tile is row-major [rows, cols], leading dimension ld. Asynchronous.
void launch_tile_topk(const float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                      std::int64_t row0, std::int64_t col0, const std::uint8_t* valid, float* sims,
                      std::int64_t* index, int k, cudaStream_t stream);

}  // namespace embgeom::kernels
