#pragma once
// The exact half of the fast precision modes: the float32 re-score of a candidate pair, defined
// once so that the device kernel (kernels/rescore_candidates.cu) and the host give the same bits,
// and the selection of each row's top K from its re-scored candidates. Host-only.
#include <cmath>
#include <cstdint>

namespace embgeom::engine {

/// Lanes of the re-score's fixed summation order (a CUDA warp).
constexpr int kRescoreLanes = 32;

/// The re-scored cosine of two normalised rows [d]: lane l sums x[c] * y[c] for c = l, l + 32, ...
/// with fused multiply-adds, in c order; the 32 lane sums are then combined by a butterfly
/// (s_l <- s_l + s_{l xor m} for m = 16, 8, 4, 2, 1). The order is fixed, so the result depends
/// only on x and y; the device kernel does exactly these operations. Error as float32 SGEMM.
inline float rescore_dot(const float* x, const float* y, std::int64_t d) {
    float lane[kRescoreLanes] = {};
    for (int l = 0; l < kRescoreLanes; ++l)
        for (std::int64_t c = l; c < d; c += kRescoreLanes) lane[l] = std::fma(x[c], y[c], lane[l]);
    for (int m = kRescoreLanes / 2; m > 0; m /= 2) {
        float next[kRescoreLanes];
        for (int l = 0; l < kRescoreLanes; ++l) next[l] = lane[l] + lane[l ^ m];
        for (int l = 0; l < kRescoreLanes; ++l) lane[l] = next[l];
    }
    return lane[0];
}

/// For each of rows rows: the best k of its kc candidates (cand_index/cand_sim [rows, kc]
/// row-major) under ranks_before (similarity descending, ties by lower index), written to
/// out_index/out_sim [rows, k] row-major. Slots whose index is negative or kEmptyIndex, or whose
/// similarity is NaN, are not candidates; a row's candidate indices must be distinct. Output
/// slots beyond a row's candidates hold index -1 and NaN (the AllPairsResult padding).
void select_rescored_topk(const std::int64_t* cand_index, const float* cand_sim, std::int64_t rows,
                          std::int64_t kc, std::int64_t k, std::int64_t* out_index, float* out_sim);

}  // namespace embgeom::engine
