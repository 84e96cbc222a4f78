#pragma once
// Cross-domain similarity local scaling (CSLS; Conneau, Lample, Ranzato, Denoyer & Jegou 2018,
// "Word translation without parallel data", ICLR), used here within one table:
//     CSLS(x, y) = 2 cos(x, y) - r_x - r_y,
// r_x = the mean cosine of x to its K nearest neighbours. A hub (a token close to everything)
// has a large r and so drops out of the other tokens' neighbour lists.
#include <cstdint>
#include <vector>

#include "embgeom/row_source.hpp"
#include "engine/tile_plan.hpp"

namespace embgeom {

/// The CSLS score of a pair from its cosine and the two radii, as one fixed float32 expression.
/// Pass r_lo = the radius of the lower row index, so (i, j) and (j, i) give the same bits.
/// 2 * cos is exact, so a compiler contracting the expression into an FMA gives the same bits.
inline float csls_score(float cos, float r_lo, float r_hi) { return 2.0f * cos - (r_lo + r_hi); }

/// @brief CSLS radii r_i from the first neighbour pass (AllPairsResult::neighbor_sim).
/// r_i = mean of the finite values among the first `knn` slots of row i, summed in float64 in
/// slot order and rounded to float32; NaN when there is none (invalid rows, a single valid row).
/// @param[in] neighbor_sim  [rows, k] row-major similarities, best first, padded with NaN.
/// @param[in] k     slots per row (the list width), >= 1; neighbor_sim.size() must be a multiple.
/// @param[in] knn   slots that count (K of the paper), 1..k; 0 = all k.
/// @return [rows] radii.
/// @throws ResourceError (EMBGEOM_EXPECTS) on a bad k, knn or size.
std::vector<float> csls_radius(const std::vector<float>& neighbor_sim, std::int64_t k,
                               std::int64_t knn = 0);

/// Per-row top-k lists by CSLS score.
struct CslsNeighbors {
    std::int64_t rows = 0;  ///< V
    std::int64_t k = 0;     ///< slots per row
    /// [rows, k] row-major: neighbour rows by descending score, ties by lower index, self
    /// excluded. Invalid rows, and slots beyond the number of other valid rows, hold -1.
    std::vector<std::int64_t> index;
    /// [rows, k] the CSLS score csls_score(cos, r_lo, r_hi) of each listed pair; NaN in padding.
    std::vector<float> score;
    std::int64_t valid_rows = 0;
    bool resident = true;  ///< the whole normalised table was held (false: blocks were streamed)
};

/// The contract of a CSLS pass, checked the same way by every backend: valid empty or [V], radius
/// [V] and finite on valid rows when at least two rows are valid, k >= 1, block_rows >= 0.
/// @throws ResourceError naming what is wrong.
void check_csls_inputs(std::int64_t V, const std::vector<std::uint8_t>& valid,
                       const std::vector<float>& radius, std::int64_t k, std::int64_t block_rows);

/// check_csls_inputs, then valid as a [V] mask (every row when valid is empty): what the CUDA
/// engine's CSLS mode takes, one engine or several.
std::vector<std::uint8_t> checked_csls_mask(std::int64_t V, const std::vector<std::uint8_t>& valid,
                                            const std::vector<float>& radius, std::int64_t k,
                                            std::int64_t block_rows);

/// @brief Top-k neighbours of every valid row by CSLS score.
///
/// Works like the all-pairs cosine engine (cpu/cpu_all_pairs.cpp), whose grid driver it shares
/// (cpu/grid_driver.hpp, engine/tile_plan.hpp): valid rows are compacted and normalised with engine::normalize_row
/// (float64 norm, float32 x^), every cosine comes from one single-threaded cblas_sgemm on the
/// fixed G x G grid tile holding the pair (tiles gi <= gj), so each cos(i, j), and hence each
/// score, is a function of (i, j) alone and has the same bits as the engine's cosine. Each
/// unordered pair is scored once and offered to both rows' lists. Threads take grid tiles into
/// per-thread partial lists that are merged under the total order of engine::TopKLists, so the
/// result is bit-identical for any block size, memory budget and thread count.
/// Memory: engine::working_set_bytes of the plan (table resident, or two blocks streamed from
/// source when it does not fit memory_budget), plus 4 V bytes of radii.
///
/// @param[in] source  the table [V, d] of float32 rows.
/// @param[in] valid   [V] nonzero for rows taking part (finite rows), or empty for all rows.
/// @param[in] radius  [V] r_i (see csls_radius); must be finite on valid rows when at least two
///                    rows are valid; ignored on invalid rows.
/// @param[in] k       neighbours per row, >= 1; lists are padded when k >= valid rows.
/// @param[in] block_rows     block side in rows (rounded up to the grid); 0 = from the budget.
/// @param[in] memory_budget  bytes; 0 = 1 GiB.
/// @param[in] threads        OpenMP threads, 0 = omp_get_max_threads(); results do not depend on it.
/// @throws ResourceError (EMBGEOM_EXPECTS, check_csls_inputs) on bad shapes or a non-finite
///         radius of a valid row, and when a row marked valid holds a non-finite value.
/// With a share (Backend::csls_neighbors_share): the lists of its grid tiles only.
CslsNeighbors csls_neighbors(RowSource& source, const std::vector<std::uint8_t>& valid,
                             const std::vector<float>& radius, std::int64_t k,
                             std::int64_t block_rows = 0, std::uint64_t memory_budget = 0,
                             int threads = 0, const engine::GridShare& share = {});

}  // namespace embgeom
