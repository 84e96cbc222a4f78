#pragma once
// Random-direction extremeness: how often each token is the extreme point of the table along a
// random direction. Extreme points along any direction are vertices of the convex hull, so tokens
// counted often are vertex candidates and tokens never counted are interior (for the sampled
// directions).
#include <cstdint>
#include <optional>
#include <vector>

#include "embgeom/row_source.hpp"
#include "geometry/simplex_row_tiles.hpp"

namespace embgeom {

struct ExtremenessOptions {
    std::int64_t directions = 10000;  ///< M, number of random unit directions (1 .. 2^30 - 1)
    std::uint64_t seed = 0;           ///< the directions are a function of (seed, M, d) only
    /// [d] subtracted from every row (in float64, then rounded to float32) before projecting.
    /// It does not move the extreme points; it keeps float32 projections accurate when the rows
    /// share a large offset.
    std::optional<std::vector<double>> center;
    SimplexStreamOptions stream;
};

struct Extremeness {
    /// [V] per token: the number of directions u for which it has the largest projection u.x
    /// plus the number for which it has the smallest; sums to 2M when any row is valid. 0 for
    /// invalid rows and for rows never extreme.
    std::vector<std::int32_t> counts;
    /// [M] the token with the largest u_m . x, after ties (-1 if no row is valid).
    std::vector<std::int64_t> argmax;
    /// [M] the token with the smallest u_m . x, after ties (-1 if no row is valid).
    std::vector<std::int64_t> argmin;
};

/// M random unit directions in R^d: row m is g / ||g|| with g_j ~ N(0, 1) drawn by Box-Muller
/// from a counter-based hash (SplitMix64 of (seed, m * d + j)), normalised in float64 and rounded
/// to float32. The same (m, d, seed) gives the same bits on every run and thread count.
/// @param[in] threads OpenMP threads (0 = omp_get_max_threads()); the result does not depend on it.
/// @return [m, d] row-major float32.
std::vector<float> random_unit_directions(std::int64_t m, std::int64_t d, std::uint64_t seed,
                                          int threads = 0);

/// The contract of an extremeness pass, checked the same way by every backend (valid mask size,
/// d >= 1: InputError, 1 <= directions < 2^30: UsageError, center size, non-negative stream
/// options: ResourceError).
void check_extremeness_inputs(const RowSource& source, const std::vector<std::uint8_t>& valid,
                              const ExtremenessOptions& opt);

/// The last step of either backend's extremeness: moves every winner in out.argmax / out.argmin
/// to the lowest valid row holding the same bits, then counts the winners into out.counts (sized
/// [V], zeroed, by the caller). GEMM
/// kernels round u . x differently depending on where x sits in the call (OpenBLAS 0.3.21's
/// Haswell and Zen SGEMM kernels do; cuBLAS may pick different kernels per tile shape), so exact
/// copies of a token need not tie in float32; their true projections do, and the tie rule gives
/// them to the lowest copy. Both backends apply it.
/// @param[in] hashes [V] a hash of each valid row's bits (equal rows, equal hashes); candidates
///                   are confirmed by reading both rows from source.
void settle_extremes(RowSource& source, const std::vector<std::uint8_t>& valid,
                     const std::vector<std::uint64_t>& hashes, Extremeness& out);

/// Random-direction extremeness counts. For each direction u_m (random_unit_directions) the
/// valid rows with the largest and the smallest projection s_im = u_m . (x_i - c) are found;
/// counts[i] = #{m : i = argmax_i s_im} + #{m : i = argmin_i s_im}. A point that is the unique
/// maximiser of a linear function over a finite set is a vertex of its convex hull, so counts[i] >
/// 0 marks hull vertices (up to float32 rounding of near-ties) and large counts mark vertices with
/// wide normal cones, the "corners" of the cloud (cf. the random-projection extreme-point tests
/// of Ding et al. 2013 "Topic discovery through data dependent and random projections", ICML).
///
/// Projections are float32 SGEMMs (cblas_sgemm) of 256-row tiles against direction tiles of up
/// to 2048 directions, each call the same shape (tiles zero-padded), one BLAS thread per call:
/// every s_im is then a function of (i, m) alone and the result is bit-identical for any block
/// size and thread count. Ties go to the lower row index. Some BLAS kernels round u . x
/// differently for a row depending on its position in the call (OpenBLAS 0.3.21 Haswell/Zen
/// SGEMM), so bit-identical rows are resolved exactly: each winner is moved to the lowest valid
/// row with the same bits (found by a per-row hash, confirmed by reading both rows).
/// Memory: the directions [M, d] float32, per thread 256 x (d + 2048) floats and 24 M bytes,
/// 8 V bytes of row hashes, plus one row block.
///
/// @param[in] source  the table [V, d], float32 rows.
/// @param[in] valid   [V] nonzero for rows to consider (finite rows), or empty for all rows.
/// @param[in] opt     M, seed, optional centre, block size and threads.
/// @throws UsageError if opt.directions is outside 1 .. 2^30 - 1.
Extremeness random_direction_extremeness(RowSource& source, const std::vector<std::uint8_t>& valid,
                                         const ExtremenessOptions& opt);

}  // namespace embgeom
