#pragma once
// Rogue dimensions (Timkey & van Schijndel 2021, "All Bark and No Bite: Rogue Dimensions in
// Transformer Language Models Obscure Representational Quality", EMNLP): the few dimensions that
// carry most of the average cosine similarity between tokens.
#include <cstdint>
#include <vector>

#include "embgeom/row_source.hpp"

namespace embgeom {

struct RogueDimension {
    std::int64_t dim = 0;
    double contribution = 0.0;  ///< CC_l
    /// CC_l / sum_l CC_l; NaN when the mean cosine is within 3 standard deviations of 0 for
    /// isotropic directions (sqrt(2 / (d n (n - 1)))), where the ratio is noise over noise.
    double share = 0.0;
};

struct RogueDimensions {
    std::int64_t n = 0;               ///< rows used (valid and of non-zero norm)
    std::int64_t zero_norm_rows = 0;  ///< valid rows skipped because ||x|| = 0 (cosine undefined)
    /// Exact mean cosine over ordered pairs i != j of used rows: sum_l contribution[l].
    double mean_cosine = 0.0;
    std::vector<double> contribution;  ///< [d] CC_l
    std::vector<RogueDimension> top;   ///< the top_n dimensions by CC_l, descending
};

/// @brief Per-dimension contributions to the average pairwise cosine similarity.
///
/// With x^_i = x_i / ||x_i||, cos(x_i, x_j) = sum_l x^_il x^_jl, so the mean over the n(n-1)
/// ordered pairs i != j splits over dimensions (Timkey & van Schijndel 2021, eq. 2-3):
///     CC_l = ( (sum_i x^_il)^2 - sum_i x^_il^2 ) / (n (n - 1)),
///     sum_l CC_l = mean_{i != j} cos(x_i, x_j)   (exactly).
/// A dimension l with CC_l far above 1/d of the total is "rogue". Streamed in one pass with
/// float64 sums taken in row order, so the result is bit-identical for every block_rows.
///
/// @param[in] src        the table [V, d].
/// @param[in] valid      [V] row mask, or empty for all rows.
/// @param[in] top_n      how many dimensions to list in `top` (clamped to [0, d]).
/// @param[in] block_rows rows per read (0 = automatic).
/// @returns contributions; contribution, mean_cosine and shares are NaN when n < 2.
RogueDimensions rogue_dimensions(RowSource& src, const std::vector<std::uint8_t>& valid,
                                 std::int64_t top_n, std::int64_t block_rows = 0);

}  // namespace embgeom
