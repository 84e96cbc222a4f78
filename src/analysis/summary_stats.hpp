#pragma once
// Distribution summaries of per-token quantities (norms, distances, mean cosines, k-occurrence).
#include <array>
#include <cstdint>
#include <vector>

namespace embgeom {

/// The quantile levels reported for every per-token quantity.
inline constexpr std::array<double, 9> kQuantileLevels = {0.001, 0.01, 0.05, 0.25, 0.5,
                                                           0.75,  0.95, 0.99, 0.999};

struct Summary {
    std::int64_t count = 0;  ///< finite values that entered the summary
    double mean = 0.0, std = 0.0, min = 0.0, max = 0.0;
    std::array<double, kQuantileLevels.size()> quantiles{};  ///< NaN when count == 0
    double median = 0.0;
    double mad = 0.0;        ///< median absolute deviation (unscaled)
    double skewness = 0.0;   ///< population skewness (third standardised moment)
};

/// Summary of the values v[i] with mask[i] != 0 (all when mask is empty) that are finite.
/// Moments in float64 (two-pass); quantiles by linear interpolation between order statistics
/// (numpy's default "linear" method); std is the population std (ddof = 0).
template <class T>
Summary summarize(const std::vector<T>& v, const std::vector<std::uint8_t>& mask = {});

/// Robust z-score (x - median) / (1.4826 * MAD); 0 when MAD == 0 and x == median, +-inf else.
double robust_zscore(double x, const Summary& s);

}  // namespace embgeom
