#include "engine/candidate_rescore.hpp"

#include <algorithm>
#include <limits>
#include <vector>

#include "embgeom/errors.hpp"
#include "engine/topk_lists.hpp"

namespace embgeom::engine {

void select_rescored_topk(const std::int64_t* cand_index, const float* cand_sim, std::int64_t rows,
                          std::int64_t kc, std::int64_t k, std::int64_t* out_index,
                          float* out_sim) {
    EMBGEOM_EXPECTS(rows >= 0 && kc >= 0 && k >= 0, "candidate list shape");
    if (k == 0) return;
#pragma omp parallel
    {
        std::vector<float> s(static_cast<std::size_t>(k));
        std::vector<std::int64_t> x(static_cast<std::size_t>(k));
#pragma omp for schedule(static)
        for (std::int64_t r = 0; r < rows; ++r) {
            std::fill(s.begin(), s.end(), kEmptySim);
            std::fill(x.begin(), x.end(), kEmptyIndex);
            for (std::int64_t q = r * kc; q < (r + 1) * kc; ++q) {
                const std::int64_t j = cand_index[q];
                if (j < 0 || j == kEmptyIndex || std::isnan(cand_sim[q])) continue;
                insert_ranked(s.data(), x.data(), k, cand_sim[q], j);
            }
            for (std::int64_t p = 0; p < k; ++p) {
                const bool filled = x[p] != kEmptyIndex;
                out_index[r * k + p] = filled ? x[p] : -1;
                out_sim[r * k + p] = filled ? s[p] : std::numeric_limits<float>::quiet_NaN();
            }
        }
    }
}

}  // namespace embgeom::engine
