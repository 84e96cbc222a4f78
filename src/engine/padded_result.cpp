#include "engine/padded_result.hpp"

#include <limits>

namespace embgeom::engine {

AllPairsResult padded_result(std::int64_t rows, const AllPairsOptions& opt) {
    const auto n = static_cast<std::size_t>(rows);
    AllPairsResult r;
    r.rows = rows;
    r.k = opt.k;
    r.neighbor_index.assign(n * static_cast<std::size_t>(opt.k), -1);
    r.neighbor_sim.assign(n * static_cast<std::size_t>(opt.k),
                          std::numeric_limits<float>::quiet_NaN());
    r.row_mean.assign(n, std::numeric_limits<float>::quiet_NaN());
    if (opt.accumulate_row_sums) r.row_sum_tiled.assign(n, std::numeric_limits<double>::quiet_NaN());
    return r;
}

}  // namespace embgeom::engine
