#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// Longest list the device selection keeps (min(k, kc) slots, in a warp's registers).
constexpr int kSelectTopkMaxK = 128;

/// engine::select_rescored_topk on the device, bit for bit: for each of rows rows, the best
/// min(k, kc) of its kc candidates (cand_index / cand_sim [rows, kc] row-major) by similarity
/// descending, ties by lower index, written to out_index / out_sim [rows, k] row-major; slots
/// whose index is negative or kTopkEmptyIndex, or whose similarity is NaN, are not candidates (a
/// row's candidate indices are distinct), and output slots beyond a row's candidates hold index
/// -1 and NaN (the AllPairsResult padding). So the sorted device lists of the exact path come out
/// as they are, and re-scored candidates come out as the top k of their new cosines.
/// Requires 1 <= min(k, kc) <= kSelectTopkMaxK. Asynchronous on stream.
void launch_select_topk(const std::int64_t* cand_index, const float* cand_sim, std::int64_t rows,
                        int kc, std::int64_t k, std::int64_t* out_index, float* out_sim,
                        cudaStream_t stream);

}  // namespace embgeom::kernels
