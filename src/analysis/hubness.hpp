#pragma once
// Hubness figures from the k-occurrence counts N_k(i) (how many tokens list i among their K
// nearest neighbours).
#include <cstdint>
#include <vector>

namespace embgeom {

struct HubnessFigures {
    double skewness = 0.0;         ///< skewness of N_k over valid tokens (Radovanovic et al. 2010)
    double robin_hood_index = 0.0; ///< sum |N_k - mean| / (2 sum N_k): share of occurrences to move for equality
    std::int64_t antihubs = 0;     ///< valid tokens with N_k == 0
    std::int64_t hubs = 0;         ///< valid tokens with N_k >= 2k
    double gini = 0.0;             ///< Gini coefficient of N_k (0 = every token equally often a neighbour)
    double antihub_share = 0.0;    ///< antihubs / valid tokens
    double hub_share = 0.0;        ///< hubs / valid tokens
};

/// Share of the largest ratios r2/r1 that TwoNN leaves out (Facco et al.'s and scikit-dimension's
/// default).
constexpr double kTwoNNDiscard = 0.1;

/// TwoNN intrinsic dimension (Facco et al. 2017, Sci. Rep. 7:12140) as scikit-dimension computes
/// it (skdim.id.TwoNN, discard_fraction 0.1): the ratios mu = r2/r1 of each valid token's two
/// nearest-neighbour distances, sorted; the largest 10% left out; d = the slope through the origin
/// of -log(1 - i/N) on log(mu_i). Leaving out the largest ratios makes the estimate robust to
/// near-duplicate tokens, whose r1 float32 cosines cannot resolve and whose log(mu) would
/// otherwise dominate a maximum-likelihood sum (two float32 backends then disagreed by 1%).
/// Distances are chordal distances between L2-normalised rows, r = sqrt(2 - 2 cos), i.e. the
/// geometry of the cosine neighbours; tokens with r1 = 0 (exact duplicates) are left out. NaN
/// when k < 2 or too few tokens qualify. neighbor_sim is [V, k] row-major as in AllPairsResult.
double twonn_dimension(const std::vector<float>& neighbor_sim, std::int64_t k,
                       const std::vector<std::uint8_t>& valid);

HubnessFigures hubness_figures(const std::vector<std::int32_t>& k_occurrence,
                               const std::vector<std::uint8_t>& valid, std::int64_t k);

}  // namespace embgeom
