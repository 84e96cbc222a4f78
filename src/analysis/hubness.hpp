#pragma once
// Hubness figures from the k-occurrence counts N_k(i) (how many tokens list i among their K
// nearest neighbours).
#include <cstdint>
#include <vector>

namespace embgeom {

struct HubnessFigures {
    double skewness = 0.0;         ///< skewness of N_k over valid tokens (Radovanovic et al. 2010)
    double robin_hood_index = 0.0; ///< sum |N_k - mean| / (2 sum N_k): share of occurrences to move for equality
    std::int64_t antihubs = 0;     ///< valid tokens with N_k == 0
    std::int64_t hubs = 0;         ///< valid tokens with N_k >= 2k
};

HubnessFigures hubness_figures(const std::vector<std::int32_t>& k_occurrence,
                               const std::vector<std::uint8_t>& valid, std::int64_t k);

}  // namespace embgeom
