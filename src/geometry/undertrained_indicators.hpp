#pragma once
// Under-trained ("glitch") token indicators after Land & Bartolo 2024, "Fishing for Magikarp:
// Automatically Detecting Under-trained Tokens in Large Language Models" (EMNLP 2024): tokens
// whose (un)embedding vector points the same way as those of tokens known never to be trained.
#include <cstdint>
#include <optional>
#include <vector>

#include "embgeom/backend.hpp"
#include "embgeom/row_source.hpp"

namespace embgeom {

struct UndertrainedOptions {
    /// [d] subtracted from every row before anything else (x <- x - b).
    std::optional<std::vector<double>> bias;
    /// [d] unit first principal direction of the valid rows (e.g. row 0 of
    /// PrincipalDirections::eigenvectors). Computed with principal_directions when absent,
    /// which costs two passes and an O(d^3) eigendecomposition.
    std::optional<std::vector<double>> first_pc;
    /// The candidate threshold is this quantile of the indicator over the valid rows (the
    /// paper's reference code verifies the bottom 2%).
    double threshold_quantile = 0.02;
    /// Fraction of valid rows taken as the reference set when none is given (see
    /// automatic_reference_ids).
    double auto_reference_quantile = 0.005;
    std::int64_t block_rows = 0;  ///< rows per read (0 = automatic)
};

struct UndertrainedIndicators {
    /// [V] cosine distance to the reference mean (below); NaN for invalid rows. Small = similar
    /// to the known-unused tokens = likely under-trained.
    std::vector<double> indicator;
    std::vector<double> first_pc;             ///< [d] the direction removed
    std::vector<std::int64_t> reference_ids;  ///< the valid reference tokens used, ascending
    bool reference_automatic = false;         ///< true when automatic_reference_ids chose them
    std::vector<double> reference_mean;       ///< [d] mean of the processed reference rows
    double threshold_quantile = 0.0;
    double threshold = 0.0;  ///< that quantile of the indicator (NaN if no row)
    /// Valid tokens with indicator <= threshold, by ascending indicator (ties: lower id first).
    std::vector<std::int64_t> candidates;
};

/// @brief The "E_out cosine distance w/o 1st PC" indicator of Land & Bartolo 2024
///        (`embedding_distance_metrics` in their reference code, github.com/cohere-ai/magikarp).
///
/// For every valid row x (unembedding rows are the paper's choice; embedding rows work too):
///   1. z = x - b                                    (when a bias b is given)
///   2. y = z - (z . u) u, u the first principal direction of the mean-centred matrix; the
///      projection is removed from the un-centred z, as in the reference code (the first PC
///      carries the component shared by all tokens, which would otherwise dominate cosines).
///   3. r = mean of y over the reference tokens (known-unused tokens, valid rows only).
///   4. indicator = 1 - (y . r) / max(||y|| ||r||, 1e-6)  (the reference code's clip, which
///      gives an all-zero row the distance 1).
/// Then threshold = the threshold_quantile quantile of the indicator over the valid rows
/// (linear interpolation, numpy's default), and the candidates are the tokens at or below it
/// (to be verified by prompting the model, which embgeom does not do).
///
/// @param[in] backend        computes the first PC when opt.first_pc is absent
///                           (principal_directions on that backend).
/// @param[in] src            the table [V, d].
/// @param[in] valid          [V] row mask, or empty for all rows.
/// @param[in] reference_ids  known-unused token ids (see reference_tokens.hpp); when empty,
///                           automatic_reference_ids picks them (reference_automatic = true).
/// @param[in] opt            bias, precomputed first PC, quantiles, block size.
/// @throws UsageError for a reference id outside [0, V); InputError when no reference token
///         is a valid row, no row is valid, a reference row or (when the first PC is computed
///         here) any valid row holds a non-finite value; with first_pc given, a non-finite
///         non-reference row just gets a NaN indicator;
///         ResourceError as principal_directions when the first PC is computed here.
UndertrainedIndicators undertrained_indicators(Backend& backend, RowSource& src,
                                               const std::vector<std::uint8_t>& valid,
                                               const std::vector<std::int64_t>& reference_ids,
                                               const UndertrainedOptions& opt = {});

/// undertrained_indicators with the first PC (when not given) from the CPU reference of
/// principal_directions, without a Backend object.
UndertrainedIndicators undertrained_indicators(RowSource& src,
                                               const std::vector<std::uint8_t>& valid,
                                               const std::vector<std::int64_t>& reference_ids,
                                               const UndertrainedOptions& opt = {});

/// @brief HEURISTIC reference set for when no known-unused tokens are given: the
///        ceil(q n) valid tokens (at least 1) closest to the centroid of the processed rows y
///        (steps 1-2 above), i.e. the bottom q of the distance-to-centroid distribution.
///
/// Rationale: tokens that never receive gradient keep (a decayed version of) their shared
/// initialisation, so they sit in one tight clump, typically near the middle of the cloud once
/// the common first PC is gone. This is NOT from Land & Bartolo (who always use known-unused
/// tokens) and can fail: a model whose unused tokens were pushed away from the centroid, or a
/// vocabulary with no untrained tokens at all, yields a reference set of ordinary tokens and an
/// indicator that measures "closeness to the centre" instead. Report it as such.
///
/// @param[in] src       the table [V, d].
/// @param[in] valid     [V] row mask, or empty for all rows.
/// @param[in] first_pc  [d] unit direction removed (step 2).
/// @param[in] bias      optional [d] removed first (step 1).
/// @param[in] q         fraction in (0, 1].
/// @param[in] block_rows  rows per read (0 = automatic).
/// @returns ascending ids; empty when no row is valid.
std::vector<std::int64_t> automatic_reference_ids(RowSource& src,
                                                  const std::vector<std::uint8_t>& valid,
                                                  const std::vector<double>& first_pc,
                                                  const std::optional<std::vector<double>>& bias,
                                                  double q, std::int64_t block_rows = 0);

/// Quantile q in [0, 1] of the finite values v[i] with mask[i] != 0 (all when mask is empty),
/// by linear interpolation between order statistics (numpy's default); NaN when there are none.
double masked_quantile(const std::vector<double>& v, const std::vector<std::uint8_t>& mask,
                       double q);

}  // namespace embgeom
