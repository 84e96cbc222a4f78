#include "engine/topk_lists.hpp"

#include <algorithm>

#include "embgeom/errors.hpp"

namespace embgeom::engine {

void merge_topk(const float* a_sim, const std::int64_t* a_index, const float* b_sim,
                const std::int64_t* b_index, std::int64_t k, float* out_sim,
                std::int64_t* out_index) {
    std::int64_t ia = 0, ib = 0;
    for (std::int64_t o = 0; o < k; ++o) {
        // Empty slots sort last in both inputs, so taking from either exhausted side is safe.
        if (ranks_before(b_sim[ib], b_index[ib], a_sim[ia], a_index[ia])) {
            out_sim[o] = b_sim[ib];
            out_index[o] = b_index[ib++];
        } else {
            out_sim[o] = a_sim[ia];
            out_index[o] = a_index[ia++];
        }
    }
}

TopKLists::TopKLists(std::int64_t rows, std::int64_t k) : k_(k) {
    EMBGEOM_EXPECTS(k >= 1 && rows >= 0, "top-k list shape");
    reset(rows);
}

void TopKLists::reset(std::int64_t rows) {
    rows_ = rows;
    sim_.assign(static_cast<std::size_t>(rows * k_), kEmptySim);
    index_.assign(static_cast<std::size_t>(rows * k_), kEmptyIndex);
}

void TopKLists::merge_row(std::int64_t r, const TopKLists& other, std::int64_t other_row) {
    EMBGEOM_EXPECTS(other.k_ == k_, "merging top-k lists of different k");
    const float* os = other.sims(other_row);
    if (!ranks_before(os[0], other.indices(other_row)[0], threshold(r), index_[r * k_ + k_ - 1]))
        return;  // nothing in `other` can enter
    thread_local std::vector<float> s;
    thread_local std::vector<std::int64_t> x;
    s.assign(sim_.begin() + r * k_, sim_.begin() + (r + 1) * k_);
    x.assign(index_.begin() + r * k_, index_.begin() + (r + 1) * k_);
    merge_topk(s.data(), x.data(), os, other.indices(other_row), k_, &sim_[r * k_],
               &index_[r * k_]);
}

}  // namespace embgeom::engine
