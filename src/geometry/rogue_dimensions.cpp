#include "geometry/rogue_dimensions.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "geometry/block_stream.hpp"

namespace embgeom {

RogueDimensions rogue_dimensions(RowSource& src, const std::vector<std::uint8_t>& valid,
                                 std::int64_t top_n, std::int64_t block_rows) {
    detail::check_mask(src, valid);
    const std::int64_t d = src.cols();
    std::vector<double> sum(static_cast<std::size_t>(d), 0.0), sum_sq(sum);
    std::vector<double> unit(static_cast<std::size_t>(d));
    RogueDimensions out;

    detail::for_each_block(src, block_rows,
                           [&](std::int64_t first, std::int64_t count, const float* rows) {
                               for (std::int64_t r = 0; r < count; ++r) {
                                   if (!detail::is_valid(valid, first + r)) continue;
                                   const float* x = rows + r * d;
                                   double norm2 = 0.0;
                                   for (std::int64_t j = 0; j < d; ++j)
                                       norm2 += static_cast<double>(x[j]) * x[j];
                                   if (norm2 == 0.0) {
                                       ++out.zero_norm_rows;
                                       continue;
                                   }
                                   const double inv = 1.0 / std::sqrt(norm2);
                                   for (std::int64_t j = 0; j < d; ++j) {
                                       const double u = x[j] * inv;
                                       sum[j] += u;
                                       sum_sq[j] += u * u;
                                   }
                                   ++out.n;
                               }
                           });

    const double nan = std::numeric_limits<double>::quiet_NaN();
    out.contribution.assign(static_cast<std::size_t>(d), nan);
    out.mean_cosine = nan;
    if (out.n >= 2) {
        const double pairs = static_cast<double>(out.n) * static_cast<double>(out.n - 1);
        out.mean_cosine = 0.0;
        for (std::int64_t j = 0; j < d; ++j) {
            out.contribution[j] = (sum[j] * sum[j] - sum_sq[j]) / pairs;
            out.mean_cosine += out.contribution[j];
        }
    }

    std::vector<std::int64_t> order(static_cast<std::size_t>(d));
    std::iota(order.begin(), order.end(), std::int64_t{0});
    const std::int64_t k = std::clamp<std::int64_t>(top_n, 0, d);
    if (out.n >= 2) {
        std::partial_sort(order.begin(), order.begin() + k, order.end(),
                          [&](std::int64_t a, std::int64_t b) {
                              if (out.contribution[a] != out.contribution[b])
                                  return out.contribution[a] > out.contribution[b];
                              return a < b;
                          });
    }
    // For n random directions the mean cosine is 0 with standard deviation sqrt(2 / (d n (n-1)))
    // (the n(n-1)/2 pairwise cosines are uncorrelated, each of variance 1/d): below 3 of those
    // a share of it means nothing (an isotropic table would report a "rogue" dimension at random).
    const double noise =
        out.n >= 2 ? 3.0 * std::sqrt(2.0 / (static_cast<double>(d) * static_cast<double>(out.n) *
                                            static_cast<double>(out.n - 1)))
                   : nan;
    const bool share_defined = std::fabs(out.mean_cosine) > noise;
    for (std::int64_t i = 0; i < k; ++i) {
        const std::int64_t l = order[i];
        out.top.push_back({l, out.contribution[l],
                           share_defined ? out.contribution[l] / out.mean_cosine : nan});
    }
    return out;
}

}  // namespace embgeom
