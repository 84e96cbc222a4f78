#include "analysis/hubness.hpp"

#include <algorithm>
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
    // Gini = sum_i (2i - n - 1) x_(i) / (n sum x) over the sorted values.
    std::vector<std::int32_t> sorted;
    for (std::size_t i = 0; i < k_occurrence.size(); ++i)
        if (valid.empty() || valid[i]) sorted.push_back(k_occurrence[i]);
    std::sort(sorted.begin(), sorted.end());
    const double n = static_cast<double>(sorted.size());
    double weighted = 0.0;
    for (std::size_t i = 0; i < sorted.size(); ++i)
        weighted += (2.0 * static_cast<double>(i + 1) - n - 1.0) * sorted[i];
    h.gini = total > 0 ? weighted / (n * total) : 0.0;
    h.antihub_share = n > 0 ? static_cast<double>(h.antihubs) / n : 0.0;
    h.hub_share = n > 0 ? static_cast<double>(h.hubs) / n : 0.0;
    return h;
}

double twonn_dimension(const std::vector<float>& neighbor_sim, std::int64_t k,
                       const std::vector<std::uint8_t>& valid) {
    if (k < 2) return std::nan("");
    const std::size_t rows = neighbor_sim.size() / static_cast<std::size_t>(k);
    // mu = r2 / r1 per token; exact duplicates (r1 = 0) have none and are left out, as in Facco
    // et al.
    std::vector<double> mu;
    mu.reserve(rows);
    for (std::size_t i = 0; i < rows; ++i) {
        if (!valid.empty() && !valid[i]) continue;
        const double c1 = neighbor_sim[i * k], c2 = neighbor_sim[i * k + 1];
        if (!std::isfinite(c1) || !std::isfinite(c2)) continue;
        const double r1 = std::sqrt(std::max(0.0, 2.0 - 2.0 * c1));
        const double r2 = std::sqrt(std::max(0.0, 2.0 - 2.0 * c2));
        if (r1 > 0.0) mu.push_back(r2 / r1);
    }
    std::sort(mu.begin(), mu.end());
    // Least squares through the origin of -log(1 - F(mu)) on log(mu), F the empirical CDF i / N,
    // over the smallest (1 - kTwoNNDiscard) N ratios: the largest ratios are the near-duplicates,
    // whose r1 float32 cosines cannot resolve (1 - c ~ 1e-7).
    const std::size_t N = mu.size();
    const auto used = static_cast<std::size_t>(static_cast<double>(N) * (1.0 - kTwoNNDiscard));
    double xy = 0.0, xx = 0.0;
    for (std::size_t i = 0; i < used && std::isfinite(mu[i]); ++i) {
        const double x = std::log(mu[i]);
        const double y = -std::log(1.0 - static_cast<double>(i) / static_cast<double>(N));
        xy += x * y;
        xx += x * x;
    }
    return xx > 0.0 ? xy / xx : std::nan("");
}

}  // namespace embgeom
