#pragma once
// The view that shows the simplex: every token projected onto the plane through three vertices
// (PCA and t-SNE hide the simplex; this plane cuts through three of its corners).
#include <array>
#include <cstdint>
#include <vector>

#include "embgeom/row_source.hpp"
#include "geometry/simplex_row_tiles.hpp"

namespace embgeom {

/// Every token in the plane through the rows of three vertex tokens a, b, c.
struct VertexPlaneProjection {
    std::array<std::int64_t, 3> vertices{};  ///< token ids a, b, c
    std::vector<double> origin;              ///< [d] x_a, the origin of the plane coordinates
    /// [2, d] row-major orthonormal basis of the plane: e1 = (x_b - x_a) / ||x_b - x_a||,
    /// e2 = the Gram-Schmidt residual of x_c - x_a against e1, normalised.
    std::vector<double> axes;
    /// 2-D coordinates of a, b, c: (0, 0), (||x_b - x_a||, 0), (e1 . (x_c - x_a), h_c) with h_c >
    /// 0.
    std::array<double, 6> triangle{};
    /// [V, 2] (u, v) = (e1 . (x - x_a), e2 . (x - x_a)), the projection p = x_a + u e1 + v e2.
    std::vector<double> coords;
    /// [V, 3] (l_a, l_b, l_c): p = l_a x_a + l_b x_b + l_c x_c with l_a + l_b + l_c = 1; all in
    /// [0, 1] inside the triangle, some negative outside.
    std::vector<double> barycentric;
    /// [V] ||x - p||, the distance from the plane.
    std::vector<double> distance;
};

/// Projects every valid row onto the plane through x_a, x_b, x_c (by default the caller passes
/// the first three SPA vertices, spa_vertices()). With y = x - x_a:
///   u = e1 . y,  v = e2 . y,  distance = ||y - u e1 - v e2||,
///   l_c = v / h_c,  l_b = (u - l_c (e1 . (x_c - x_a))) / ||x_b - x_a||,  l_a = 1 - l_b - l_c
/// (the 2x2 barycentric solve in the plane's own coordinates; Floater 2015, "Generalized
/// barycentric coordinates and applications", Acta Numerica 24). The vertices map to
/// (1, 0, 0), (0, 1, 0), (0, 0, 1) and distance 0 up to float64 rounding.
/// Streamed in row blocks, float64 per row (the table is never held); bit-identical for any block
/// size and thread count. Invalid rows get NaN in coords, barycentric and distance.
///
/// @param[in] source    the table [V, d], float32 rows.
/// @param[in] valid     [V] nonzero for rows to project (finite rows), or empty for all rows.
/// @param[in] vertices  token ids a, b, c.
/// @param[in] opt       block size and threads.
/// @throws InputError naming a, b and c if they are repeated or (nearly) collinear: the smallest
///         height of the triangle is <= 1e-5 x max(longest edge, ||x_a||, ||x_b||, ||x_c||), below
///         what float32 rows can resolve. InputError if a vertex is out of range or invalid.
VertexPlaneProjection project_onto_vertex_plane(RowSource& source,
                                                const std::vector<std::uint8_t>& valid,
                                                const std::array<std::int64_t, 3>& vertices,
                                                const SimplexStreamOptions& opt = {});

}  // namespace embgeom
