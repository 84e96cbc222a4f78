#include "engine/k_occurrence.hpp"

#include "embgeom/errors.hpp"

namespace embgeom::engine {

std::vector<std::int32_t> k_occurrence(const AllPairsResult& result) {
    EMBGEOM_EXPECTS(
        static_cast<std::int64_t>(result.neighbor_index.size()) == result.rows * result.k,
        "neighbor_index has rows * k entries");
    std::vector<std::int32_t> counts(static_cast<std::size_t>(result.rows), 0);
    for (const std::int64_t j : result.neighbor_index) {
        if (j < 0) continue;
        EMBGEOM_EXPECTS(j < result.rows, "neighbour index in range");
        ++counts[static_cast<std::size_t>(j)];
    }
    return counts;
}

}  // namespace embgeom::engine
