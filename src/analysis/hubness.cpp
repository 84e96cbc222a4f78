#include "analysis/hubness.hpp"

#include <cmath>

#include "analysis/summary_stats.hpp"

namespace embgeom {

HubnessFigures hubness_figures(const std::vector<std::int32_t>& k_occurrence,
                               const std::vector<std::uint8_t>& valid, std::int64_t k) {
    HubnessFigures h;
    const Summary s = summarize(k_occurrence, valid);
    h.skewness = s.skewness;
    double total = 0.0, deviation = 0.0;
    for (std::size_t i = 0; i < k_occurrence.size(); ++i) {
        if (!valid.empty() && !valid[i]) continue;
        total += k_occurrence[i];
        deviation += std::fabs(k_occurrence[i] - s.mean);
        h.antihubs += k_occurrence[i] == 0;
        h.hubs += k_occurrence[i] >= 2 * k;
    }
    h.robin_hood_index = total > 0 ? deviation / (2.0 * total) : 0.0;
    return h;
}

}  // namespace embgeom
