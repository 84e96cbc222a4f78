#include "engine/row_normalize.hpp"

#include <cmath>
#include <limits>

namespace embgeom::engine {

double normalize_row(const float* x, const double* center, std::int64_t d, float* out) {
    double ss = 0.0;
    for (std::int64_t k = 0; k < d; ++k) {
        const double v = center ? static_cast<double>(x[k]) - center[k] : x[k];
        ss += v * v;
    }
    const double norm = std::sqrt(ss);
    if (!(norm > 0.0) || !std::isfinite(norm)) {
        for (std::int64_t k = 0; k < d; ++k) out[k] = 0.0f;
        return norm;
    }
    for (std::int64_t k = 0; k < d; ++k) {
        const double v = center ? static_cast<double>(x[k]) - center[k] : x[k];
        out[k] = static_cast<float>(v / norm);
    }
    return norm;
}

double dot_with_sum(const float* xhat, const double* s, std::int64_t d) {
    double acc = 0.0;
    for (std::int64_t k = 0; k < d; ++k) acc += static_cast<double>(xhat[k]) * s[k];
    return acc;
}

double row_mean_identity(double xhat_dot_sum, bool zero_row, std::int64_t n_valid) {
    if (n_valid < 2) return std::numeric_limits<double>::quiet_NaN();
    return (xhat_dot_sum - (zero_row ? 0.0 : 1.0)) / static_cast<double>(n_valid - 1);
}

}  // namespace embgeom::engine
