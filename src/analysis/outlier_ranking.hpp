#pragma once
// Rank-ordered outlier lists: the N tokens with the smallest or largest score.
#include <cstdint>
#include <vector>

#include "analysis/summary_stats.hpp"

namespace embgeom {

struct RankedToken {
    std::int64_t token_id = 0;
    double score = 0.0;
    double zscore = 0.0;  ///< robust z-score of the score among all eligible tokens
};

enum class Tail { kSmallest, kLargest };

/// The n tokens with the smallest (or largest) finite score among those with mask[i] != 0,
/// ties broken by the lower token id so lists are deterministic.
template <class T>
std::vector<RankedToken> rank_tokens(const std::vector<T>& score,
                                     const std::vector<std::uint8_t>& mask, std::int64_t n,
                                     Tail tail);

}  // namespace embgeom
