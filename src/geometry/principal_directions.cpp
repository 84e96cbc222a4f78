#include "geometry/principal_directions.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <new>
#include <string>
#include <utility>

#include "cpu/cpu_gram.hpp"
#include "core/checked_alloc.hpp"
#include "embgeom/errors.hpp"
#include "geometry/block_stream.hpp"

namespace embgeom {
namespace {

void check_dims(std::int64_t d, const char* what) {
    if (d > kMaxPrincipalDim)
        throw ResourceError(std::string(what) + ": d = " + std::to_string(d) +
                            " is too large (the d x d covariance and its eigendecomposition "
                            "support d <= " +
                            std::to_string(kMaxPrincipalDim) + ")");
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

using MakeAccumulator =
    std::function<std::unique_ptr<GramAccumulator>(std::int64_t, const std::vector<double>&)>;
using SymmetricEigen =
    std::function<void(std::int64_t, std::vector<double>&, std::vector<double>&)>;

Covariance covariance(RowSource& src, const std::vector<std::uint8_t>& valid,
                      const CovarianceOptions& opt, const MakeAccumulator& make_accumulator) {
    const std::int64_t d = src.cols();
    check_dims(d, "covariance");
    detail::check_mask(src, valid);
    EMBGEOM_EXPECTS(d >= 1, "covariance of a table with no columns");
    EMBGEOM_EXPECTS(!opt.shift || static_cast<std::int64_t>(opt.shift->size()) == d,
                    "shift must have d entries");

    std::int64_t n_first = 0;
    const std::vector<double> s =
        opt.shift ? *opt.shift : streamed_mean(src, valid, opt.block_rows, n_first);

    std::unique_ptr<GramAccumulator> acc = make_accumulator(d, s);
    const std::int64_t B = std::min<std::int64_t>(detail::auto_block_rows(opt.block_rows, d),
                                                  std::max<std::int64_t>(src.rows(), 1));
    std::vector<std::uint8_t> block_valid(static_cast<std::size_t>(B));
    detail::for_each_block(src, B, [&](std::int64_t first, std::int64_t count, const float* rows) {
        for (std::int64_t r = 0; r < count; ++r)
            block_valid[r] = detail::is_valid(valid, first + r) ? 1 : 0;
        acc->add(MatrixView<const float>(rows, count, d), block_valid.data());
    });
    GramSums g = acc->finish();
    acc.reset();
    const std::int64_t n = g.n;
    const std::vector<double>& t = g.column_sums;

    if (n == 0) throw InputError("covariance of " + src.describe() + ": no valid rows");
    for (std::int64_t j = 0; j < d; ++j)
        if (!std::isfinite(t[j]))
            throw InputError("covariance of " + src.describe() +
                             ": a valid row holds a NaN or an infinity (mask non-finite rows)");

    Covariance out;
    out.dims = d;
    out.matrix = std::move(g.gram);
    const double inv_n = 1.0 / static_cast<double>(n);
    out.n = n;
    out.mean.resize(static_cast<std::size_t>(d));
    std::vector<double> delta(static_cast<std::size_t>(d));
    for (std::int64_t j = 0; j < d; ++j) {
        delta[j] = t[j] * inv_n;
        out.mean[j] = s[j] + delta[j];
    }
    // S from the upper triangle (both are filled; this keeps the CPU bits of earlier versions).
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

PrincipalDirections principal(const Covariance& cov, const SymmetricEigen& symmetric_eigen) {
    const std::int64_t d = cov.dims;
    check_dims(d, "principal directions");
    EMBGEOM_EXPECTS(d >= 1 && static_cast<std::int64_t>(cov.matrix.size()) == d * d &&
                        static_cast<std::int64_t>(cov.mean.size()) == d,
                    "covariance shape");

    std::vector<double> a = checked_vector<double>(cov.matrix.size(), "the eigenvector matrix");
    std::copy(cov.matrix.begin(), cov.matrix.end(), a.begin());
    std::vector<double> w;
    symmetric_eigen(d, a, w);  // ascending; row k of a = eigenvector of w[k]
    EMBGEOM_EXPECTS(
        static_cast<std::int64_t>(w.size()) == d && static_cast<std::int64_t>(a.size()) == d * d,
        "symmetric_eigen output shape");

    PrincipalDirections pd;
    pd.dims = d;
    pd.n = cov.n;
    pd.mean = cov.mean;
    // Descending order: reverse the rows in place (no second d x d).
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

std::unique_ptr<GramAccumulator> cpu_accumulator(std::int64_t d, const std::vector<double>& shift) {
    return std::make_unique<CpuGramAccumulator>(d, shift);
}

}  // namespace

Covariance streamed_covariance(Backend& backend, RowSource& src,
                               const std::vector<std::uint8_t>& valid,
                               const CovarianceOptions& opt) {
    return covariance(src, valid, opt, [&backend](std::int64_t d, const std::vector<double>& s) {
        return backend.gram_accumulator(d, s);
    });
}

Covariance streamed_covariance(RowSource& src, const std::vector<std::uint8_t>& valid,
                               const CovarianceOptions& opt) {
    return covariance(src, valid, opt, cpu_accumulator);
}

PrincipalDirections principal_directions(Backend& backend, const Covariance& cov) {
    return principal(cov, [&backend](std::int64_t d, std::vector<double>& a,
                                     std::vector<double>& w) { backend.symmetric_eigen(d, a, w); });
}

PrincipalDirections principal_directions(Backend& backend, RowSource& src,
                                         const std::vector<std::uint8_t>& valid,
                                         const CovarianceOptions& opt) {
    return principal_directions(backend, streamed_covariance(backend, src, valid, opt));
}

PrincipalDirections principal_directions(const Covariance& cov) {
    return principal(cov, cpu_symmetric_eigen);
}

PrincipalDirections principal_directions(RowSource& src, const std::vector<std::uint8_t>& valid,
                                         const CovarianceOptions& opt) {
    return principal_directions(streamed_covariance(src, valid, opt));
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

}  // namespace embgeom
