#pragma once
// The CPU all-pairs cosine engine: upper-triangle tiles through SGEMM, each tile folded into the
// per-row top-K, the histogram, the duplicate list and (optionally) row sums while it is in cache.
#include <cstdint>
#include <vector>

#include "embgeom/backend.hpp"
#include "engine/tile_plan.hpp"

namespace embgeom {

/// See Backend::all_pairs. threads = OpenMP threads for the fold and BLAS (0 = all cores).
/// With a share (Backend::all_pairs_share) only its grid tiles are computed; partial, when given,
/// receives the exact sums (row_sums in original row order, [V]).
AllPairsResult cpu_all_pairs(RowSource& source, const std::vector<std::uint8_t>& valid,
                             const AllPairsOptions& opt, int threads,
                             const engine::GridShare& share = {},
                             AllPairsPartial* partial = nullptr);

}  // namespace embgeom
