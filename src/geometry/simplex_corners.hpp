#pragma once
// The corners of the simplex: which tokens belong to which vertex, by their barycentric weights
// in the affine hull of the K vertices.
#include <cstdint>
#include <vector>

#include "embgeom/row_source.hpp"
#include "geometry/simplex_row_tiles.hpp"

namespace embgeom {

struct CornerOptions {
    std::int64_t top_n = 20;    ///< N, tokens listed per vertex (>= 0)
    bool keep_weights = false;  ///< also return every token's K weights ([V, K] float64)
    SimplexStreamOptions stream;
};

struct SimplexCorners {
    std::vector<std::int64_t> vertices;  ///< [K] the vertex token ids, as given
    /// [V] position (0..K-1, in `vertices`) of the vertex with the largest weight, ties to the
    /// lower position; -1 for invalid rows.
    std::vector<std::int32_t> assignment;
    std::vector<double> weight;             ///< [V] that largest weight; NaN for invalid rows
    std::vector<std::int64_t> corner_size;  ///< [K] number of tokens assigned to each vertex
    std::int64_t top_n = 0;                 ///< N
    /// [K, N] row-major: per vertex, the tokens assigned to it with the largest weights, by weight
    /// descending, ties to the lower token id; -1 where the corner has fewer than N tokens.
    std::vector<std::int64_t> top_tokens;
    std::vector<double> top_weights;  ///< [K, N] their weights; NaN where top_tokens is -1
    std::vector<double> weights;      ///< [V, K] all weights (keep_weights only; NaN invalid)
};

/// Corner membership. Barycentric coordinates with respect to K vertices in d > K - 1 dimensions
/// are not defined for points off their affine hull, so this is the definition used: each row x
/// is projected onto the affine hull of the vertex rows v_0..v_{K-1} by least squares,
///   mu = argmin ||x - v_0 - D mu||,  D = [v_1 - v_0, ..., v_{K-1} - v_0]  (d x (K-1)),
/// i.e. the normal equations (D^T D) mu = D^T (x - v_0), solved through the thin QR D = Q R
/// (Gram-Schmidt, run twice) as mu = R^{-1} Q^T (x - v_0) because D^T D = R^T R squares the
/// condition number. The weights are lambda_0 = 1 - sum(mu), lambda_k = mu_k: they sum to 1,
/// reproduce the projection as sum lambda_k v_k, do not depend on any centring (the fit is
/// affine), and are the usual barycentric coordinates when x lies in the simplex. The token joins
/// the corner of the vertex with the largest weight. (These are the sum-to-one constrained
/// least-squares (SCLS) abundances of linear spectral unmixing: Heinz & Chang 2001, "Fully
/// constrained least squares linear spectral mixture analysis method for material
/// quantification in hyperspectral imagery", IEEE TGRS 39(3); no nonnegativity constraint.)
///
/// Streamed: per 256-row tile, P = (X - v_0) Q^T by cblas_dgemm and mu = P R^{-T} by cblas_dtrsm,
/// float64, same-shape calls with one BLAS thread each, so results are bit-identical for any
/// block size and thread count. Memory: per thread 256 x d float64, plus one row block.
///
/// @param[in] source    the table [V, d], float32 rows.
/// @param[in] valid     [V] nonzero for rows to assign (finite rows), or empty for all rows.
/// @param[in] vertices  [K] vertex token ids (K >= 1), e.g. spa_vertices().vertices.
/// @param[in] opt       N, keep_weights, block size and threads.
/// @throws UsageError if vertices is empty or top_n < 0. InputError naming the vertex ids if
///         they are repeated or not affinely independent (a QR diagonal <= 1e-5 x the coordinate
///         scale), or if a vertex is out of range or invalid.
SimplexCorners simplex_corners(RowSource& source, const std::vector<std::uint8_t>& valid,
                               const std::vector<std::int64_t>& vertices,
                               const CornerOptions& opt = {});

}  // namespace embgeom
