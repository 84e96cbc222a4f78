#include "geometry/principal_directions.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <string>
#include <utility>

#include "embgeom/errors.hpp"
#include "geometry/block_stream.hpp"

// LAPACK from libopenblas (no LAPACKE). The trailing lengths are gfortran's hidden CHARACTER
// arguments.
extern "C" void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda,
                        double* w, double* work, const int* lwork, int* iwork, const int* liwork,
                        int* info, std::size_t jobz_len, std::size_t uplo_len);

namespace embgeom {
namespace {

void check_dims(std::int64_t d, const char* what) {
    if (d > kMaxPrincipalDim)
        throw ResourceError(std::string(what) + ": d = " + std::to_string(d) +
                            " is too large (the d x d covariance and its eigendecomposition "
                            "support d <= " +
                            std::to_string(kMaxPrincipalDim) + ")");
}

template <class T>
std::vector<T> allocate(std::size_t n, const char* what) {
    try {
        return std::vector<T>(n);
    } catch (const std::bad_alloc&) {
        throw ResourceError(std::string("out of memory allocating ") + what + " (" +
                            std::to_string(n * sizeof(T) >> 20) + " MiB)");
    }
}

std::vector<double> streamed_mean(RowSource& src, const std::vector<std::uint8_t>& valid,
                                  std::int64_t block_rows, std::int64_t& n) {
    const std::int64_t d = src.cols();
    std::vector<double> sum(static_cast<std::size_t>(d), 0.0);
    n = 0;
    detail::for_each_block(src, block_rows,
                           [&](std::int64_t first, std::int64_t count, const float* rows) {
                               for (std::int64_t r = 0; r < count; ++r) {
                                   if (!detail::is_valid(valid, first + r)) continue;
                                   const float* x = rows + r * d;
                                   for (std::int64_t j = 0; j < d; ++j) sum[j] += x[j];
                                   ++n;
                               }
                           });
    if (n > 0)
        for (double& s : sum) s /= static_cast<double>(n);
    return sum;
}

}  // namespace

Covariance streamed_covariance(RowSource& src, const std::vector<std::uint8_t>& valid,
                               const CovarianceOptions& opt) {
    const std::int64_t d = src.cols();
    check_dims(d, "covariance");
    detail::check_mask(src, valid);
    EMBGEOM_EXPECTS(d >= 1, "covariance of a table with no columns");
    EMBGEOM_EXPECTS(!opt.shift || static_cast<std::int64_t>(opt.shift->size()) == d,
                    "shift must have d entries");

    std::int64_t n_first = 0;
    const std::vector<double> s =
        opt.shift ? *opt.shift : streamed_mean(src, valid, opt.block_rows, n_first);

    Covariance out;
    out.dims = d;
    out.matrix = allocate<double>(static_cast<std::size_t>(d * d), "the d x d covariance");
    std::vector<double> t(static_cast<std::size_t>(d), 0.0);
    const std::int64_t B = std::min<std::int64_t>(detail::auto_block_rows(opt.block_rows, d),
                                                  std::max<std::int64_t>(src.rows(), 1));
    std::vector<double> centred = allocate<double>(static_cast<std::size_t>(B * d), "a row block");
    std::int64_t n = 0;

    detail::for_each_block(src, B, [&](std::int64_t first, std::int64_t count, const float* rows) {
        std::int64_t m = 0;  // valid rows of this block, packed at the top of `centred`
        for (std::int64_t r = 0; r < count; ++r) {
            if (!detail::is_valid(valid, first + r)) continue;
            const float* x = rows + r * d;
            double* y = centred.data() + m * d;
            for (std::int64_t j = 0; j < d; ++j) {
                y[j] = static_cast<double>(x[j]) - s[j];
                t[j] += y[j];
            }
            ++m;
        }
        if (m == 0) return;
        // Row-major Y [m, d]: S += Y^T Y, upper triangle of the row-major S.
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(d), static_cast<int>(m),
                    1.0, centred.data(), static_cast<int>(d), 1.0, out.matrix.data(),
                    static_cast<int>(d));
        n += m;
    });

    if (n == 0) throw InputError("covariance of " + src.describe() + ": no valid rows");
    for (std::int64_t j = 0; j < d; ++j)
        if (!std::isfinite(t[j]))
            throw InputError("covariance of " + src.describe() +
                             ": a valid row holds a NaN or an infinity (mask non-finite rows)");

    const double inv_n = 1.0 / static_cast<double>(n);
    out.n = n;
    out.mean.resize(static_cast<std::size_t>(d));
    std::vector<double> delta(static_cast<std::size_t>(d));
    for (std::int64_t j = 0; j < d; ++j) {
        delta[j] = t[j] * inv_n;
        out.mean[j] = s[j] + delta[j];
    }
    double* C = out.matrix.data();
    for (std::int64_t i = 0; i < d; ++i) {
        for (std::int64_t j = i; j < d; ++j) {
            const double c = C[i * d + j] * inv_n - delta[i] * delta[j];
            C[i * d + j] = c;
            C[j * d + i] = c;
        }
    }
    return out;
}

void fill_spectrum_statistics(PrincipalDirections& pd) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const std::int64_t d = pd.dims;
    double trace = 0.0, sum_sq = 0.0;
    for (double l : pd.eigenvalues) {
        const double c = std::max(l, 0.0);
        trace += c;
        sum_sq += c * c;
    }
    pd.total_variance = trace;
    pd.explained_ratio.assign(pd.eigenvalues.size(), nan);
    pd.effective_rank = pd.participation_ratio = nan;
    pd.mp_upper_edge = pd.mp_edge_tw_scale = 0.0;
    pd.above_mp_edge = pd.above_mp_edge_margin = 0;
    if (!(trace > 0.0) || d <= 0 || pd.n <= 0) return;

    double entropy = 0.0;
    for (std::size_t k = 0; k < pd.eigenvalues.size(); ++k) {
        const double p = std::max(pd.eigenvalues[k], 0.0) / trace;
        pd.explained_ratio[k] = p;
        if (p > 0.0) entropy -= p * std::log(p);
    }
    pd.effective_rank = std::exp(entropy);
    pd.participation_ratio = trace * trace / sum_sq;

    const double dd = static_cast<double>(d), nn = static_cast<double>(pd.n);
    const double sigma2 = trace / dd;
    const double g = 1.0 + std::sqrt(dd / nn);
    pd.mp_upper_edge = sigma2 * g * g;
    const double n1 = std::max(nn - 1.0, 1.0);  // one degree of freedom went into the mean
    pd.mp_edge_tw_scale = sigma2 * (std::sqrt(n1) + std::sqrt(dd)) *
                          std::cbrt(1.0 / std::sqrt(n1) + 1.0 / std::sqrt(dd)) / n1;
    const double margin_edge = pd.mp_upper_edge + kMpEdgeTracyWidomMargin * pd.mp_edge_tw_scale;
    for (double l : pd.eigenvalues) {
        pd.above_mp_edge += l > pd.mp_upper_edge;
        pd.above_mp_edge_margin += l > margin_edge;
    }
}

PrincipalDirections principal_directions(const Covariance& cov) {
    const std::int64_t d = cov.dims;
    check_dims(d, "principal directions");
    EMBGEOM_EXPECTS(d >= 1 && static_cast<std::int64_t>(cov.matrix.size()) == d * d &&
                        static_cast<std::int64_t>(cov.mean.size()) == d,
                    "covariance shape");

    // Column-major LAPACK on a symmetric matrix: the row-major copy is the same matrix, and
    // eigenvector k comes back as the contiguous column k.
    std::vector<double> a = allocate<double>(cov.matrix.size(), "the eigenvector matrix");
    std::copy(cov.matrix.begin(), cov.matrix.end(), a.begin());
    std::vector<double> w(static_cast<std::size_t>(d));
    const int n = static_cast<int>(d);
    int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
    double work_query = 0.0;
    dsyevd_("V", "U", &n, a.data(), &n, w.data(), &work_query, &lwork, &iwork_query, &liwork, &info,
            1, 1);
    if (info != 0)
        throw ResourceError("dsyevd workspace query failed (info " + std::to_string(info) + ")");
    lwork = static_cast<int>(work_query);
    liwork = iwork_query;
    std::vector<double> work =
        allocate<double>(static_cast<std::size_t>(lwork), "dsyevd workspace");
    std::vector<int> iwork = allocate<int>(static_cast<std::size_t>(liwork), "dsyevd workspace");
    dsyevd_("V", "U", &n, a.data(), &n, w.data(), work.data(), &lwork, iwork.data(), &liwork, &info,
            1, 1);
    if (info != 0)
        throw ResourceError("dsyevd failed to converge on the " + std::to_string(d) + " x " +
                            std::to_string(d) + " covariance (info " + std::to_string(info) + ")");
    work = {};
    iwork = {};

    PrincipalDirections pd;
    pd.dims = d;
    pd.n = cov.n;
    pd.mean = cov.mean;
    // LAPACK returns ascending eigenvalues: reverse the columns in place (no second d x d).
    pd.eigenvalues.assign(w.rbegin(), w.rend());
    for (std::int64_t k = 0; k < d / 2; ++k)
        std::swap_ranges(a.begin() + k * d, a.begin() + (k + 1) * d, a.begin() + (d - 1 - k) * d);
    for (std::int64_t k = 0; k < d; ++k) {
        double* u = a.data() + k * d;
        std::int64_t arg = 0;
        for (std::int64_t j = 1; j < d; ++j)
            if (std::fabs(u[j]) > std::fabs(u[arg])) arg = j;
        if (u[arg] < 0.0)
            for (std::int64_t j = 0; j < d; ++j) u[j] = -u[j];
    }
    pd.eigenvectors = std::move(a);
    fill_spectrum_statistics(pd);
    return pd;
}

PrincipalDirections principal_directions(RowSource& src, const std::vector<std::uint8_t>& valid,
                                         const CovarianceOptions& opt) {
    return principal_directions(streamed_covariance(src, valid, opt));
}

}  // namespace embgeom
