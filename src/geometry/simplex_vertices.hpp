#pragma once
// Vertices of the simplex that a trained embedding table fills: the Successive Projection
// Algorithm (SPA), streamed over row blocks.
#include <cstdint>
#include <vector>

#include "embgeom/row_source.hpp"
#include "geometry/simplex_row_tiles.hpp"

namespace embgeom {

/// The vertices SPA picked.
struct SpaVertices {
    /// [K] token ids (row indices) in selection order.
    std::vector<std::int64_t> vertices;
    /// [K] residual norm of each vertex when it was picked, recomputed from its row in float64:
    /// vertex 0: ||x - c||, its distance from the centre; vertex k >= 1: the distance of x from
    /// the affine hull of vertices 0..k-1 (vertex 1: its distance from vertex 0).
    std::vector<double> residual_norms;
};

/// K simplex vertices by the Successive Projection Algorithm, affine form (Araujo et al. 2001,
/// "The successive projections algorithm for variable selection in spectroscopic multicomponent
/// analysis"; Gillis & Vavasis 2014, "Fast and robust recursive algorithms for separable
/// nonnegative matrix factorization", IEEE TPAMI 36(4); the translation to the first vertex is
/// that of FastAnchorWords, Arora et al. 2013, "A practical algorithm for topic modeling with
/// provable guarantees", ICML).
///
/// With y_i = x_i - c for the valid rows (c = center):
///   v_0 = argmax_i ||y_i||,
///   v_k = argmax_i ||P_k (x_i - x_{v_0})||  for k = 1..K-1,
/// where P_k projects onto the orthogonal complement of span{x_{v_j} - x_{v_0} : 0 < j < k}.
/// Plain SPA on centred rows would find only K-1 vertices of a K-vertex simplex around c (the
/// K vectors v - c are linearly dependent, so after K-1 picks every noise-free residual is 0);
/// measuring the later steps from v_0 spans the affine hull with K-1 directions instead. The
/// maximum of the strictly convex ||.||^2 over the convex hull is at a vertex, which is why each
/// pick is an extreme point (exactly so for noise-free separable data).
///
/// Streaming: K passes over source. Pass 0 computes ||y_i||^2, pass 1 ||x_i - x_{v_0}||^2 and
/// pass k >= 2 the update r_i <- max(0, r_i - (q_k . (x_i - x_{v_0}))^2) with q_k the
/// orthonormal Gram-Schmidt direction of the vertex picked last; everything per row is float64
/// and the table is never held (memory: r [V] float64 plus one row block). The update loses
/// accuracy once r_i falls to ~1e-16 of its pass-1 value; the reported residual_norms are
/// recomputed from the vertex rows.
/// Ties go to the lower row index; results are bit-identical for any block size and thread count.
///
/// @param[in] source  the table [V, d], float32 rows.
/// @param[in] valid   [V] nonzero for rows to consider (finite rows), or empty for all rows.
/// @param[in] center  [d] the centre c (usually the mean of the valid rows), float64.
/// @param[in] k       number of vertices K >= 1.
/// @param[in] opt     block size and threads.
/// @throws UsageError if k < 1. InputError if fewer than k rows are valid, if a valid row is not
///         finite, or if the valid rows have fewer than k affinely independent points (a picked
///         residual <= 1e-5 x the coordinate scale: float32 rounding cannot tell it from 0).
SpaVertices spa_vertices(RowSource& source, const std::vector<std::uint8_t>& valid,
                         const std::vector<double>& center, std::int64_t k,
                         const SimplexStreamOptions& opt = {});

}  // namespace embgeom
