#include "geometry/simplex_vertices.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "embgeom/errors.hpp"
#include "geometry/simplex_row_math.hpp"

namespace embgeom {

using namespace simplex_detail;

namespace {

/// argmax_i r[i] over valid, not yet picked rows; ties to the lower index. -1 if none.
std::int64_t argmax_residual(const std::vector<double>& r, const std::vector<std::uint8_t>& valid,
                             const std::vector<std::uint8_t>& picked) {
    std::int64_t best = -1;
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(r.size()); ++i) {
        if (!row_is_valid(valid, i) || picked[static_cast<std::size_t>(i)]) continue;
        if (best < 0 || r[i] > r[best]) best = i;
    }
    return best;
}

}  // namespace

SpaVertices spa_vertices(RowSource& source, const std::vector<std::uint8_t>& valid,
                         const std::vector<double>& center, std::int64_t k,
                         const SimplexStreamOptions& opt) {
    check_table(source, valid);
    const std::int64_t V = source.rows(), d = source.cols();
    EMBGEOM_EXPECTS(static_cast<std::int64_t>(center.size()) == d, "center has d entries");
    if (k < 1)
        throw UsageError("simplex: the number of vertices must be >= 1, got " + std::to_string(k));
    const std::int64_t n_valid = count_valid(source, valid);
    if (n_valid < k)
        throw InputError(source.describe() + ": simplex: " + std::to_string(k) +
                         " vertices asked for but only " + std::to_string(n_valid) +
                         " rows are valid");
    const int threads = resolve_threads(opt.threads);

    std::vector<double> r(static_cast<std::size_t>(V), 0.0);
    std::vector<std::uint8_t> picked(static_cast<std::size_t>(V), 0);
    std::vector<double> anchor;              // x_{v_0}
    std::vector<std::vector<double>> basis;  // q_1 .. q_{k-1}, orthonormal
    SpaVertices out;
    double scale = 0.0;  // coordinate size for the degeneracy test

    for (std::int64_t step = 0; step < k; ++step) {
        const double* q = basis.empty() ? nullptr : basis.back().data();
        bool bad_row = false;
        const auto pass = [&](std::int64_t first, std::int64_t count, const float* rows) {
            int bad = 0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(| : bad)
            for (std::int64_t l = 0; l < count; ++l) {
                const std::int64_t i = first + l;
                if (!row_is_valid(valid, i)) continue;
                const float* x = rows + l * d;
                if (step == 0) {
                    r[i] = squared_distance(x, center.data(), d);
                    if (!std::isfinite(r[i])) bad = 1;
                } else if (step == 1) {
                    r[i] = squared_distance(x, anchor.data(), d);
                } else {
                    const double p = dot_of_difference(x, anchor.data(), q, d);
                    r[i] = std::max(0.0, r[i] - p * p);
                }
            }
            if (bad) bad_row = true;
        };
        for_each_tile_chunk(source, valid, opt.block_rows, pass);
        if (bad_row)
            throw InputError(source.describe() +
                             ": simplex: a row marked valid holds a non-finite value");

        const std::int64_t v = argmax_residual(r, valid, picked);
        EMBGEOM_EXPECTS(v >= 0, "a valid row is left to pick");
        std::vector<double> x = read_row_f64(source, valid, v, "simplex vertex");
        double residual;
        if (step == 0) {
            residual = std::sqrt(squared_distance(x.data(), center.data(), d));
            anchor = x;
            scale = std::sqrt(dot(x.data(), x.data(), d));
        } else {
            std::vector<double> w(static_cast<std::size_t>(d));
            for (std::int64_t j = 0; j < d; ++j) w[j] = x[j] - anchor[j];
            residual = orthogonalize_twice(w, basis);
            if (step == 1) scale = std::max(scale, residual);
            if (!(residual > kDegenerateTolerance * scale))
                throw InputError(source.describe() + ": simplex: the valid rows hold only " +
                                 std::to_string(step) + " affinely independent vertices (vertex " +
                                 std::to_string(step + 1) + " of " + std::to_string(k) +
                                 ", token " + std::to_string(v) + ", lies within " +
                                 format_g(residual) +
                                 " of the hull of the earlier ones); ask for fewer vertices");
            if (step + 1 < k) {
                for (double& t : w) t /= residual;
                basis.push_back(std::move(w));
            }
        }
        picked[static_cast<std::size_t>(v)] = 1;
        out.vertices.push_back(v);
        out.residual_norms.push_back(residual);
    }
    return out;
}

}  // namespace embgeom
