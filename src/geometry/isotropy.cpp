#include "geometry/isotropy.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace embgeom {

IsoScoreResult isoscore(const std::vector<double>& pca_variances) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    IsoScoreResult r;
    r.dims = static_cast<std::int64_t>(pca_variances.size());
    r.normalized_variances.assign(pca_variances.size(), nan);
    r.isotropy_defect = r.dims_used = r.fraction_used = r.score = nan;

    double norm2 = 0.0;
    for (double v : pca_variances) norm2 += std::max(v, 0.0) * std::max(v, 0.0);
    if (r.dims < 2 || !(norm2 > 0.0)) return r;

    const double n = static_cast<double>(r.dims), sqrt_n = std::sqrt(n);
    const double scale = sqrt_n / std::sqrt(norm2);
    double dist2 = 0.0;
    for (std::size_t i = 0; i < pca_variances.size(); ++i) {
        const double v = std::max(pca_variances[i], 0.0) * scale;
        r.normalized_variances[i] = v;
        dist2 += (v - 1.0) * (v - 1.0);
    }
    r.isotropy_defect = std::sqrt(dist2) / std::sqrt(2.0 * (n - sqrt_n));
    const double t = n - r.isotropy_defect * r.isotropy_defect * (n - sqrt_n);
    r.dims_used = t * t / n;
    r.fraction_used = r.dims_used / n;
    r.score = (n * r.fraction_used - 1.0) / (n - 1.0);
    return r;
}

IsoScoreResult isoscore(const PrincipalDirections& pd) { return isoscore(pd.eigenvalues); }

}  // namespace embgeom
