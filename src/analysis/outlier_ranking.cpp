#include "analysis/outlier_ranking.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace embgeom {

template <class T>
std::vector<RankedToken> rank_tokens(const std::vector<T>& score,
                                     const std::vector<std::uint8_t>& mask, std::int64_t n,
                                     Tail tail) {
    std::vector<std::int64_t> ids;
    ids.reserve(score.size());
    for (std::size_t i = 0; i < score.size(); ++i)
        if ((mask.empty() || mask[i]) && std::isfinite(static_cast<double>(score[i])))
            ids.push_back(static_cast<std::int64_t>(i));
    const Summary s = summarize(score, mask);
    const auto before = [&](std::int64_t a, std::int64_t b) {
        const double sa = static_cast<double>(score[a]), sb = static_cast<double>(score[b]);
        if (sa != sb) return tail == Tail::kSmallest ? sa < sb : sa > sb;
        return a < b;
    };
    const auto take = static_cast<std::size_t>(std::clamp<std::int64_t>(n, 0, ids.size()));
    std::partial_sort(ids.begin(), ids.begin() + take, ids.end(), before);
    std::vector<RankedToken> out(take);
    for (std::size_t r = 0; r < take; ++r) {
        const double v = static_cast<double>(score[ids[r]]);
        out[r] = {ids[r], v, robust_zscore(v, s)};
    }
    return out;
}

template std::vector<RankedToken> rank_tokens<float>(const std::vector<float>&,
                                                     const std::vector<std::uint8_t>&,
                                                     std::int64_t, Tail);
template std::vector<RankedToken> rank_tokens<double>(const std::vector<double>&,
                                                      const std::vector<std::uint8_t>&,
                                                      std::int64_t, Tail);
template std::vector<RankedToken> rank_tokens<std::int32_t>(const std::vector<std::int32_t>&,
                                                            const std::vector<std::uint8_t>&,
                                                            std::int64_t, Tail);

}  // namespace embgeom
