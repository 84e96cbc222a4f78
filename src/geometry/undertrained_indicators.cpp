#include "geometry/undertrained_indicators.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "embgeom/errors.hpp"
#include "geometry/block_stream.hpp"
#include "geometry/principal_directions.hpp"

namespace embgeom {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kMinNormProduct = 1e-6;  // magikarp's clip of ||y|| ||r||

/// y = (x - b) - ((x - b) . u) u   (steps 1-2 of the indicator).
struct RowProcessor {
    const double* bias = nullptr;  // may be null
    const double* u = nullptr;
    std::int64_t d = 0;

    void operator()(const float* x, double* y) const {
        double p = 0.0;
        for (std::int64_t j = 0; j < d; ++j) {
            y[j] = bias ? static_cast<double>(x[j]) - bias[j] : static_cast<double>(x[j]);
            p += y[j] * u[j];
        }
        for (std::int64_t j = 0; j < d; ++j) y[j] -= p * u[j];
    }
};

RowProcessor make_processor(const std::optional<std::vector<double>>& bias,
                            const std::vector<double>& first_pc, std::int64_t d) {
    EMBGEOM_EXPECTS(static_cast<std::int64_t>(first_pc.size()) == d,
                    "first_pc must have d entries");
    EMBGEOM_EXPECTS(!bias || static_cast<std::int64_t>(bias->size()) == d,
                    "bias must have d entries");
    return RowProcessor{bias ? bias->data() : nullptr, first_pc.data(), d};
}

/// Sum of processed rows over the ids marked in `member` (row order, so deterministic).
std::vector<double> processed_sum(RowSource& src, const std::vector<std::uint8_t>& member,
                                  const RowProcessor& proc, std::int64_t block_rows,
                                  std::int64_t& count) {
    const std::int64_t d = src.cols();
    std::vector<double> sum(static_cast<std::size_t>(d), 0.0), y(sum);
    count = 0;
    detail::for_each_block(src, block_rows,
                           [&](std::int64_t first, std::int64_t n, const float* rows) {
                               for (std::int64_t r = 0; r < n; ++r) {
                                   if (!member[static_cast<std::size_t>(first + r)]) continue;
                                   proc(rows + r * d, y.data());
                                   for (std::int64_t j = 0; j < d; ++j) sum[j] += y[j];
                                   ++count;
                               }
                           });
    return sum;
}

/// out[i] = f(y_i) for the valid rows, NaN elsewhere; rows in parallel (each result depends on
/// its own row only, so the output is deterministic).
template <class F>
std::vector<double> per_row(RowSource& src, const std::vector<std::uint8_t>& valid,
                            const RowProcessor& proc, std::int64_t block_rows, F f) {
    const std::int64_t d = src.cols();
    std::vector<double> out(static_cast<std::size_t>(src.rows()), kNaN);
    detail::for_each_block(src, block_rows,
                           [&](std::int64_t first, std::int64_t n, const float* rows) {
#pragma omp parallel
                               {
                                   std::vector<double> y(static_cast<std::size_t>(d));
#pragma omp for schedule(static)
                                   for (std::int64_t r = 0; r < n; ++r) {
                                       if (!detail::is_valid(valid, first + r)) continue;
                                       proc(rows + r * d, y.data());
                                       out[static_cast<std::size_t>(first + r)] = f(y.data());
                                   }
                               }
                           });
    return out;
}

}  // namespace

double masked_quantile(const std::vector<double>& v, const std::vector<std::uint8_t>& mask,
                       double q) {
    EMBGEOM_EXPECTS(mask.empty() || mask.size() == v.size(), "mask size");
    EMBGEOM_EXPECTS(q >= 0.0 && q <= 1.0, "quantile level in [0, 1]");
    std::vector<double> a;
    for (std::size_t i = 0; i < v.size(); ++i)
        if ((mask.empty() || mask[i]) && std::isfinite(v[i])) a.push_back(v[i]);
    if (a.empty()) return kNaN;
    std::sort(a.begin(), a.end());
    const double pos = q * static_cast<double>(a.size() - 1);
    const std::size_t lo = static_cast<std::size_t>(std::floor(pos));
    const std::size_t hi = std::min(lo + 1, a.size() - 1);
    return a[lo] + (a[hi] - a[lo]) * (pos - static_cast<double>(lo));
}

std::vector<std::int64_t> automatic_reference_ids(RowSource& src,
                                                  const std::vector<std::uint8_t>& valid,
                                                  const std::vector<double>& first_pc,
                                                  const std::optional<std::vector<double>>& bias,
                                                  double q, std::int64_t block_rows) {
    detail::check_mask(src, valid);
    EMBGEOM_EXPECTS(q > 0.0 && q <= 1.0, "automatic reference quantile in (0, 1]");
    const std::int64_t V = src.rows(), d = src.cols();
    const RowProcessor proc = make_processor(bias, first_pc, d);
    const std::vector<std::uint8_t> member = detail::valid_mask_or_all(valid, V);

    std::int64_t n = 0;
    std::vector<double> centroid = processed_sum(src, member, proc, block_rows, n);
    if (n == 0) return {};
    for (double& c : centroid) c /= static_cast<double>(n);

    const std::vector<double> dist = per_row(src, valid, proc, block_rows, [&](const double* y) {
        double s = 0.0;
        for (std::int64_t j = 0; j < d; ++j) s += (y[j] - centroid[j]) * (y[j] - centroid[j]);
        return std::sqrt(s);
    });
    std::vector<std::int64_t> ids;
    for (std::int64_t i = 0; i < V; ++i)
        if (member[static_cast<std::size_t>(i)] && std::isfinite(dist[i])) ids.push_back(i);
    if (ids.empty()) return {};
    const std::int64_t k = std::clamp<std::int64_t>(
        static_cast<std::int64_t>(std::ceil(q * static_cast<double>(ids.size()))), 1,
        static_cast<std::int64_t>(ids.size()));
    std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](std::int64_t a, std::int64_t b) {
        return dist[a] != dist[b] ? dist[a] < dist[b] : a < b;
    });
    ids.resize(static_cast<std::size_t>(k));
    std::sort(ids.begin(), ids.end());
    return ids;
}

namespace {

// backend == nullptr: the first PC from the CPU reference of principal_directions.
UndertrainedIndicators undertrained(Backend* backend, RowSource& src,
                                    const std::vector<std::uint8_t>& valid,
                                    const std::vector<std::int64_t>& reference_ids,
                                    const UndertrainedOptions& opt) {
    detail::check_mask(src, valid);
    EMBGEOM_EXPECTS(opt.threshold_quantile >= 0.0 && opt.threshold_quantile <= 1.0,
                    "threshold quantile in [0, 1]");
    const std::int64_t V = src.rows(), d = src.cols();
    for (std::int64_t id : reference_ids)
        if (id < 0 || id >= V)
            throw UsageError("reference token id " + std::to_string(id) + " is outside [0, " +
                             std::to_string(V) + ") of " + src.describe());

    UndertrainedIndicators out;
    out.threshold_quantile = opt.threshold_quantile;
    if (opt.first_pc) {
        EMBGEOM_EXPECTS(static_cast<std::int64_t>(opt.first_pc->size()) == d,
                        "first_pc must have d entries");
        out.first_pc = *opt.first_pc;
    } else {
        CovarianceOptions copt;
        copt.block_rows = opt.block_rows;
        const PrincipalDirections pd = backend ? principal_directions(*backend, src, valid, copt)
                                               : principal_directions(src, valid, copt);
        out.first_pc.assign(pd.eigenvectors.begin(), pd.eigenvectors.begin() + d);
    }
    const RowProcessor proc = make_processor(opt.bias, out.first_pc, d);

    std::vector<std::int64_t> ref = reference_ids;
    if (ref.empty()) {
        ref = automatic_reference_ids(src, valid, out.first_pc, opt.bias,
                                      opt.auto_reference_quantile, opt.block_rows);
        out.reference_automatic = true;
        if (ref.empty())
            throw InputError("under-trained indicators of " + src.describe() + ": no valid rows");
    }
    std::vector<std::uint8_t> member(static_cast<std::size_t>(V), 0);
    for (std::int64_t id : ref)
        if (detail::is_valid(valid, id)) member[static_cast<std::size_t>(id)] = 1;
    for (std::int64_t i = 0; i < V; ++i)
        if (member[static_cast<std::size_t>(i)]) out.reference_ids.push_back(i);
    if (out.reference_ids.empty())
        throw InputError("under-trained indicators of " + src.describe() + ": none of the " +
                         std::to_string(ref.size()) + " reference tokens is a valid row");

    std::int64_t n_ref = 0;
    out.reference_mean = processed_sum(src, member, proc, opt.block_rows, n_ref);
    for (double& r : out.reference_mean) {
        r /= static_cast<double>(n_ref);
        if (!std::isfinite(r))
            throw InputError("under-trained indicators of " + src.describe() +
                             ": a reference token row holds a NaN or an infinity");
    }
    double ref_norm = 0.0;
    for (double r : out.reference_mean) ref_norm += r * r;
    ref_norm = std::sqrt(ref_norm);

    const std::vector<double>& r = out.reference_mean;
    out.indicator = per_row(src, valid, proc, opt.block_rows, [&](const double* y) {
        double dot = 0.0, yy = 0.0;
        for (std::int64_t j = 0; j < d; ++j) {
            dot += y[j] * r[j];
            yy += y[j] * y[j];
        }
        return 1.0 - dot / std::max(std::sqrt(yy) * ref_norm, kMinNormProduct);
    });

    out.threshold = masked_quantile(out.indicator, valid, opt.threshold_quantile);
    if (std::isfinite(out.threshold)) {
        for (std::int64_t i = 0; i < V; ++i)
            if (detail::is_valid(valid, i) && out.indicator[i] <= out.threshold)
                out.candidates.push_back(i);
        std::sort(
            out.candidates.begin(), out.candidates.end(), [&](std::int64_t a, std::int64_t b) {
                return out.indicator[a] != out.indicator[b] ? out.indicator[a] < out.indicator[b]
                                                            : a < b;
            });
    }
    return out;
}

}  // namespace

UndertrainedIndicators undertrained_indicators(Backend& backend, RowSource& src,
                                               const std::vector<std::uint8_t>& valid,
                                               const std::vector<std::int64_t>& reference_ids,
                                               const UndertrainedOptions& opt) {
    return undertrained(&backend, src, valid, reference_ids, opt);
}

UndertrainedIndicators undertrained_indicators(RowSource& src,
                                               const std::vector<std::uint8_t>& valid,
                                               const std::vector<std::int64_t>& reference_ids,
                                               const UndertrainedOptions& opt) {
    return undertrained(nullptr, src, valid, reference_ids, opt);
}

}  // namespace embgeom
