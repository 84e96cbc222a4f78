#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "tile_pairs.cuh"

namespace embgeom::kernels {

/// The float32 re-score of the fast precision modes, bit for bit engine::rescore_dot
/// (src/engine/candidate_rescore.hpp): lane l of a warp sums x[c] * y[c] over c = l, l + 32, ...
/// with fused multiply-adds, then a butterfly adds the lane sums. Fixed order, so the result does
/// not depend on the launch or the schedule.

/// For every slot e < rows * kc with index[e] != kTopkEmptyIndex: sims[e] = re-score of rows
/// e / kc and index[e] of xn (row-major [*, cols], leading dimension ld, holding every row an
/// index names). Empty slots are left as they are. Asynchronous on stream.
void launch_rescore_lists(const float* xn, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                          const std::int64_t* index, int kc, float* sims, cudaStream_t stream);

/// pairs[q].cosine = re-score of token pairs[q].i (row pairs[q].i - i0 of a) and token pairs[q].j
/// (row pairs[q].j - j0 of b), for q < count. a and b are row-major [*, cols], leading dimension
/// ld. Asynchronous on stream.
void launch_rescore_pairs(const float* a, std::int64_t i0, const float* b, std::int64_t j0,
                          std::int64_t cols, std::int64_t ld, TilePair* pairs, std::int64_t count,
                          cudaStream_t stream);

}  // namespace embgeom::kernels
