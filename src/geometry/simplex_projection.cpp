#include "geometry/simplex_projection.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "embgeom/errors.hpp"
#include "geometry/simplex_row_math.hpp"

namespace embgeom {

using namespace simplex_detail;

VertexPlaneProjection project_onto_vertex_plane(RowSource& source,
                                                const std::vector<std::uint8_t>& valid,
                                                const std::array<std::int64_t, 3>& vertices,
                                                const SimplexStreamOptions& opt) {
    check_table(source, valid);
    const std::int64_t V = source.rows(), d = source.cols();
    const int threads = resolve_threads(opt.threads);
    const std::vector<double> xa = read_row_f64(source, valid, vertices[0], "simplex plane vertex");
    const std::vector<double> xb = read_row_f64(source, valid, vertices[1], "simplex plane vertex");
    const std::vector<double> xc = read_row_f64(source, valid, vertices[2], "simplex plane vertex");

    std::vector<double> ab(static_cast<std::size_t>(d)), ac(ab), bc(ab);
    for (std::int64_t j = 0; j < d; ++j) {
        ab[j] = xb[j] - xa[j];
        ac[j] = xc[j] - xa[j];
        bc[j] = xc[j] - xb[j];
    }
    const double len_ab = std::sqrt(dot(ab.data(), ab.data(), d));
    const double len_ac = std::sqrt(dot(ac.data(), ac.data(), d));
    const double len_bc = std::sqrt(dot(bc.data(), bc.data(), d));
    const double longest = std::max({len_ab, len_ac, len_bc});
    const double scale = std::max({longest, std::sqrt(dot(xa.data(), xa.data(), d)),
                                   std::sqrt(dot(xb.data(), xb.data(), d)),
                                   std::sqrt(dot(xc.data(), xc.data(), d))});

    std::vector<double> e1(static_cast<std::size_t>(d), 0.0), e2 = ac;
    double c1 = 0.0, hc = 0.0;
    if (len_ab > 0.0) {
        for (std::int64_t j = 0; j < d; ++j) e1[j] = ab[j] / len_ab;
        hc = orthogonalize_twice(e2, {e1}, &c1);
    }
    // Twice the area over the longest edge is the smallest height.
    const double min_height = longest > 0.0 ? len_ab * hc / longest : 0.0;
    if (!(min_height > kDegenerateTolerance * scale))
        throw InputError(source.describe() + ": simplex plane: tokens " +
                         std::to_string(vertices[0]) + ", " + std::to_string(vertices[1]) +
                         " and " + std::to_string(vertices[2]) +
                         " are repeated or collinear (smallest triangle height " +
                         format_g(min_height) + " at coordinate scale " + format_g(scale) +
                         "); choose three affinely independent tokens");
    for (double& t : e2) t /= hc;

    VertexPlaneProjection out;
    out.vertices = vertices;
    out.origin = xa;
    out.axes = e1;
    out.axes.insert(out.axes.end(), e2.begin(), e2.end());
    out.triangle = {0.0, 0.0, len_ab, 0.0, c1, hc};
    const double nan = std::numeric_limits<double>::quiet_NaN();
    out.coords.assign(static_cast<std::size_t>(2 * V), nan);
    out.barycentric.assign(static_cast<std::size_t>(3 * V), nan);
    out.distance.assign(static_cast<std::size_t>(V), nan);

    const auto project_chunk = [&](std::int64_t first, std::int64_t count, const float* rows) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (std::int64_t l = 0; l < count; ++l) {
            const std::int64_t i = first + l;
            if (!row_is_valid(valid, i)) continue;
            const float* x = rows + l * d;
            const double u = dot_of_difference(x, xa.data(), e1.data(), d);
            const double v = dot_of_difference(x, xa.data(), e2.data(), d);
            double s[4] = {0.0, 0.0, 0.0, 0.0};
            std::int64_t j = 0;
            for (; j + 4 <= d; j += 4)
                for (int k = 0; k < 4; ++k) {
                    const double t =
                        (static_cast<double>(x[j + k]) - xa[j + k]) - u * e1[j + k] - v * e2[j + k];
                    s[k] += t * t;
                }
            for (; j < d; ++j) {
                const double t = (static_cast<double>(x[j]) - xa[j]) - u * e1[j] - v * e2[j];
                s[0] += t * t;
            }
            const double lc = v / hc;
            const double lb = (u - lc * c1) / len_ab;
            out.coords[2 * i] = u;
            out.coords[2 * i + 1] = v;
            out.barycentric[3 * i] = 1.0 - lb - lc;
            out.barycentric[3 * i + 1] = lb;
            out.barycentric[3 * i + 2] = lc;
            out.distance[i] = std::sqrt((s[0] + s[1]) + (s[2] + s[3]));
        }
    };
    for_each_tile_chunk(source, valid, opt.block_rows, project_chunk);
    return out;
}

}  // namespace embgeom
