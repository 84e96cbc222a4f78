#pragma once
// What an isotropic Gaussian table of the same shape would show: the reference printed beside
// every headline figure, so users see where a real table departs from random geometry.
#include <cstdint>

namespace embgeom {

struct IsotropicGaussianExpectation {
    /// std/mean of ||x|| for x ~ N(0, I_d): the chi distribution with d degrees of freedom,
    /// exact (via lgamma), ~ 1/sqrt(2d) for large d.
    double norm_relative_width = 0.0;
    /// E||mean of V rows|| / E||x|| = 1/sqrt(V) exactly (the mean is N(0, I/V)).
    double centroid_norm_over_mean_norm = 0.0;
    /// Cosine of two independent rows: mean 0, std 1/sqrt(d) (exactly: Var = 1/d).
    double pair_cosine_mean = 0.0;
    double pair_cosine_std = 0.0;
};

IsotropicGaussianExpectation isotropic_gaussian_expectation(std::int64_t rows, std::int64_t dims);

}  // namespace embgeom
