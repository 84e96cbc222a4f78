#pragma once
// Principal directions of the token cloud: the streamed float64 covariance of the valid rows, its
// eigendecomposition and the spectrum summaries built on it (explained variance, effective rank,
// participation ratio, Marchenko-Pastur edge of the isotropic null). The two heavy steps (the
// d x d Gram matrix and the eigendecomposition) run on a Backend: BLAS/LAPACK on the CPU,
// cuBLAS/cuSOLVER on CUDA. The overloads without a Backend run the CPU reference (the same bits
// as the CPU backend) and suit tests and callers that have no backend.
#include <cstdint>
#include <optional>
#include <vector>

#include "embgeom/backend.hpp"
#include "embgeom/row_source.hpp"

namespace embgeom {

/// Largest d accepted by streamed_covariance / principal_directions. dsyevd needs a workspace of
/// 1 + 6d + 2d^2 doubles whose size LAPACK takes as a 32-bit int, which overflows for d > 32766;
/// at that size the covariance, the eigenvectors and the workspace hold ~4 d^2 doubles (~34 GB)
/// while principal_directions runs.
inline constexpr std::int64_t kMaxPrincipalDim = 32766;

/// How many Tracy-Widom scales above the Marchenko-Pastur edge an eigenvalue must lie to count
/// in PrincipalDirections::above_mp_edge_margin. The TW1 law puts P(TW1 > 4) near 1e-4.
inline constexpr double kMpEdgeTracyWidomMargin = 4.0;

struct CovarianceOptions {
    /// Rows read per RowSource::read_rows call (0 = about 32 MiB of float64 per block). Results
    /// do not depend on it beyond float64 rounding (the blocks are accumulated in order).
    std::int64_t block_rows = 0;
    /// A known (or approximate) mean [d]. When given, one pass over the table suffices; when
    /// absent, a first pass computes the mean. Either way the result is exact (see below).
    std::optional<std::vector<double>> shift;
};

/// Population covariance (ddof = 0) of the valid rows.
struct Covariance {
    std::int64_t dims = 0;       ///< d
    std::int64_t n = 0;          ///< valid rows that entered the covariance
    std::vector<double> mean;    ///< [d]
    std::vector<double> matrix;  ///< [d, d] row-major, symmetric (both triangles filled)
};

/// @brief Streamed covariance C = (1/n) sum_i (x_i - mu)(x_i - mu)^T over the rows with
///        valid[i] != 0 (every row when valid is empty), accumulated in float64.
///
/// Numerics: rows are converted to float64 and shifted by s (the given shift, else the mean from
/// a first pass), and the blocks enter S = sum (x - s)(x - s)^T and t = sum (x - s) through
/// backend.gram_accumulator (cblas_dsyrk on the CPU, cublasDsyrk on CUDA). Then mu = s + t/n and
/// C = S/n - (t/n)(t/n)^T: the shifted-data formula, exact for any s and free of cancellation
/// when s is close to the mean (Chan, Golub & LeVeque 1983). The mean pass runs on the host.
/// Memory: d^2 doubles plus one block of block_rows x d floats and doubles (on the device too
/// for CUDA: S and pieces of the block).
///
/// @param[in] backend  runs the Gram matrix.
/// @param[in] src    the table [V, d]; read once (shift given) or twice.
/// @param[in] valid  [V] row mask, or empty for all rows.
/// @param[in] opt    block size and optional shift [d].
/// @returns the covariance, mean and n.
/// @throws ResourceError when d > kMaxPrincipalDim or memory cannot be allocated;
///         InputError when no row is valid or a valid row holds a NaN or an infinity.
Covariance streamed_covariance(Backend& backend, RowSource& src,
                               const std::vector<std::uint8_t>& valid,
                               const CovarianceOptions& opt = {});

/// streamed_covariance on the CPU reference (CpuGramAccumulator), without a Backend object.
Covariance streamed_covariance(RowSource& src, const std::vector<std::uint8_t>& valid,
                               const CovarianceOptions& opt = {});

/// Eigen-structure of the covariance of the valid rows.
struct PrincipalDirections {
    std::int64_t dims = 0;             ///< d
    std::int64_t n = 0;                ///< valid rows
    std::vector<double> eigenvalues;   ///< [d] descending (as LAPACK gives them; the smallest may
                                       ///< be a rounding-size negative number)
    std::vector<double> eigenvectors;  ///< [d, d] row-major; row k = unit direction of eigenvalue
                                       ///< k, sign fixed so its largest-|.| component is positive
    std::vector<double> mean;          ///< [d]
    double total_variance = 0.0;       ///< trace = sum of the clamped eigenvalues max(l_k, 0)
    /// [d] l_k / trace (clamped eigenvalues; NaN when the trace is 0).
    std::vector<double> explained_ratio;
    /// exp(H), H = -sum_k p_k ln p_k with p_k = l_k / trace (Roy & Vetterli 2007, "The effective
    /// rank: a measure of effective dimensionality", EUSIPCO). In [1, d]; NaN when the trace is 0.
    double effective_rank = 0.0;
    /// (sum_k l_k)^2 / sum_k l_k^2 (e.g. Gao, Trautmann, Yu et al. 2017). In [1, d]; NaN when
    /// the trace is 0.
    double participation_ratio = 0.0;
    /// sigma^2 (1 + sqrt(d/n))^2 with sigma^2 = trace/d: the upper edge of the Marchenko-Pastur
    /// law (Marchenko & Pastur 1967) of an isotropic Gaussian cloud with the same total variance.
    /// Asymptotic (n, d -> inf with d/n fixed); using the trace makes it conservative when there
    /// are spikes (they raise sigma^2).
    double mp_upper_edge = 0.0;
    /// Eigenvalues strictly above mp_upper_edge.
    std::int64_t above_mp_edge = 0;
    /// Finite-size fluctuation scale of the largest null eigenvalue (Johnstone 2001, "On the
    /// distribution of the largest eigenvalue in principal components analysis", Ann. Stat.):
    /// sigma^2 (sqrt(n') + sqrt(d)) (1/sqrt(n') + 1/sqrt(d))^(1/3) / n' with n' = n - 1.
    double mp_edge_tw_scale = 0.0;
    /// Eigenvalues above mp_upper_edge + kMpEdgeTracyWidomMargin * mp_edge_tw_scale: the count to
    /// trust on finite tables (an isotropic cloud exceeds the bare edge in ~20% of draws).
    std::int64_t above_mp_edge_margin = 0;
};

/// @brief Eigendecomposition of a covariance (backend.symmetric_eigen: LAPACK dsyevd on the CPU,
///        cusolverDnDsyevd on CUDA; both divide and conquer) and the spectrum summaries
///        documented on PrincipalDirections.
/// @param[in] backend  runs the eigendecomposition.
/// @param[in] cov  from streamed_covariance (d >= 1).
/// @throws ResourceError when d > kMaxPrincipalDim, memory runs out or the solver fails to
///         converge.
PrincipalDirections principal_directions(Backend& backend, const Covariance& cov);

/// streamed_covariance then principal_directions, both on backend.
PrincipalDirections principal_directions(Backend& backend, RowSource& src,
                                         const std::vector<std::uint8_t>& valid,
                                         const CovarianceOptions& opt = {});

/// principal_directions on the CPU reference (LAPACK dsyevd), without a Backend object.
PrincipalDirections principal_directions(const Covariance& cov);

/// streamed_covariance then principal_directions on the CPU reference.
PrincipalDirections principal_directions(RowSource& src, const std::vector<std::uint8_t>& valid,
                                         const CovarianceOptions& opt = {});

/// @brief Fills the spectrum summaries (everything but eigenvectors and mean) of pd from
///        pd.eigenvalues, pd.dims and pd.n. Exposed for tests and for spectra computed elsewhere.
void fill_spectrum_statistics(PrincipalDirections& pd);

}  // namespace embgeom
