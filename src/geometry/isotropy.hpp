#pragma once
// IsoScore (Rudman, Gillman, Rayne & Eickhoff 2022, "IsoScore: Measuring the Uniformity of
// Embedding Space Utilization", Findings of ACL): how uniformly a point cloud uses its d
// dimensions, 0 (one dimension) to 1 (isotropic).
#include <cstdint>
#include <vector>

#include "geometry/principal_directions.hpp"

namespace embgeom {

/// Every intermediate of the published algorithm, so results can be checked step by step.
struct IsoScoreResult {
    std::int64_t dims = 0;                     ///< n in the paper (our d)
    std::vector<double> normalized_variances;  ///< step 3: sqrt(n) v / ||v||  [d]
    double isotropy_defect = 0.0;              ///< step 4: delta in [0, 1]
    double dims_used = 0.0;                    ///< k = (n - delta^2 (n - sqrt n))^2 / n, in [1, n]
    double fraction_used = 0.0;                ///< phi = k / n
    double score = 0.0;                        ///< step 5: iota = (n phi - 1) / (n - 1), in [0, 1]
};

/// @brief IsoScore of a point cloud in R^n, from the variance vector of its PCA-reoriented
///        coordinates. The published algorithm, with n = d:
///   1. PCA-rotate the points: X_PCA = (X - mean) W, W = all n principal directions.
///   2. v = diagonal of cov(X_PCA): the variances along the principal directions. In the PCA
///      basis the covariance is diagonal with the covariance eigenvalues on it, so v is exactly
///      the eigenvalue vector; callers pass it (PrincipalDirections::eigenvalues). The
///      reference code uses np.cov (ddof = 1), ddof = 0 gives the same score (step 3 removes
///      the scale).
///   3. Normalise: v^ = sqrt(n) v / ||v||_2, so that ||v^|| = ||1|| = sqrt(n).
///   4. Isotropy defect: delta = ||v^ - 1||_2 / sqrt(2 (n - sqrt(n))), the distance to the
///      identity diagonal divided by its largest possible value (all variance on one axis).
///   5. k = (n - delta^2 (n - sqrt(n)))^2 / n dimensions are used, phi = k / n, and the score
///      is iota = (n phi - 1) / (n - 1) = (k - 1) / (n - 1).
/// Negative entries (rounding noise of eigenvalues of a PSD matrix) are clamped to 0.
///
/// @param[in] pca_variances  [d] variances along the principal directions (any order).
/// @returns every intermediate; all NaN when d < 2 (step 4 divides by 0) or the variances are
///          all 0.
IsoScoreResult isoscore(const std::vector<double>& pca_variances);

/// isoscore(pd.eigenvalues).
IsoScoreResult isoscore(const PrincipalDirections& pd);

}  // namespace embgeom
