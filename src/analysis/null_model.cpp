#include "analysis/null_model.hpp"

#include <cmath>

namespace embgeom {

IsotropicGaussianExpectation isotropic_gaussian_expectation(std::int64_t rows, std::int64_t dims) {
    IsotropicGaussianExpectation e;
    const double d = static_cast<double>(dims);
    // E[chi_d] = sqrt(2) Gamma((d+1)/2) / Gamma(d/2); E[chi_d^2] = d.
    const double mean = std::sqrt(2.0) * std::exp(std::lgamma((d + 1.0) / 2.0) - std::lgamma(d / 2.0));
    const double var = std::max(d - mean * mean, 0.0);
    e.norm_relative_width = std::sqrt(var) / mean;
    e.centroid_norm_over_mean_norm = 1.0 / std::sqrt(static_cast<double>(rows));
    e.pair_cosine_mean = 0.0;
    e.pair_cosine_std = 1.0 / std::sqrt(d);
    return e;
}

}  // namespace embgeom
