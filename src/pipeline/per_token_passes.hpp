#pragma once
// Passes 1 and 2 over a table: norms, finite flags and the centroid, then distances to the
// centroid and to the bias. Used for the table itself and for the null-model tables.
#include <cstdint>
#include <vector>

#include "embgeom/backend.hpp"
#include "embgeom/config.hpp"
#include "embgeom/row_source.hpp"

namespace embgeom {

/// Per-token results of passes 1 and 2.
struct PerToken {
    std::vector<float> norms, centered_norms, bias_norms;
    std::vector<std::uint8_t> finite;  ///< every element finite
    std::vector<std::uint8_t> valid;   ///< finite and non-zero: enters cosine statistics
    std::vector<double> centroid;
    std::int64_t finite_rows = 0, zero_rows = 0;
};

/// Row-block size for the streamed per-token passes: a block buffer of at most 1/8 of the budget.
std::int64_t per_token_block_rows(const AnalyzeConfig& cfg, std::uint64_t budget, std::int64_t V,
                                  std::int64_t d);

/// Streams table twice in blocks of block_rows. bias may be null.
/// @throws InputError when every row is non-finite.
PerToken per_token_passes(RowSource& table, Backend& backend, std::int64_t block_rows,
                          const std::vector<double>* bias);

}  // namespace embgeom
