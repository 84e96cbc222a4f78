#pragma once
// Per-row top-K neighbour lists with one deterministic total order, so that any split of the
// candidates (tiles, threads, ranks, devices) merges into the same lists. Host-only.
//
// Order: higher similarity first; equal similarities -> lower index first. An empty slot holds
// (-inf, kEmptyIndex), which every real candidate ranks before (similarities are finite).
#include <cstdint>
#include <limits>
#include <vector>

namespace embgeom::engine {

constexpr std::int64_t kEmptyIndex = std::numeric_limits<std::int64_t>::max();
constexpr float kEmptySim = -std::numeric_limits<float>::infinity();

/// True when candidate (sa, ia) ranks strictly before (sb, ib).
inline bool ranks_before(float sa, std::int64_t ia, float sb, std::int64_t ib) {
    return sa > sb || (sa == sb && ia < ib);
}

/// Inserts (sim, index) into the sorted list (s, x) of k slots when it ranks before the worst
/// slot, shifting worse entries down; true if inserted. The one insertion rule of every top-K
/// list (global lists here, the fold's per-thread lists in src/cpu/fold_lists.hpp).
template <class Index>
inline bool insert_ranked(float* s, Index* x, std::int64_t k, float sim, Index index) {
    if (!ranks_before(sim, index, s[k - 1], x[k - 1])) return false;
    std::int64_t p = k - 1;
    for (; p > 0 && ranks_before(sim, index, s[p - 1], x[p - 1]); --p) {
        s[p] = s[p - 1];
        x[p] = x[p - 1];
    }
    s[p] = sim;
    x[p] = index;
    return true;
}

/// Merges two sorted lists of length k (slots may be empty) into the best k of their union,
/// written to (out_sim, out_index), which may alias neither input. Inputs must not share an
/// index (each candidate pair is offered to exactly one partial list).
void merge_topk(const float* a_sim, const std::int64_t* a_index, const float* b_sim,
                const std::int64_t* b_index, std::int64_t k, float* out_sim,
                std::int64_t* out_index);

/// rows lists of k slots, each sorted by ranks_before; storage [rows, k] row-major.
class TopKLists {
  public:
    TopKLists() = default;
    TopKLists(std::int64_t rows, std::int64_t k);

    /// Resizes to rows x k (k kept) and empties every list.
    void reset(std::int64_t rows);

    std::int64_t rows() const { return rows_; }
    std::int64_t k() const { return k_; }

    /// Similarity of the worst kept slot: a candidate can enter only if its similarity is >= this
    /// (the vectorised pre-test of the fold).
    float threshold(std::int64_t r) const { return sim_[r * k_ + k_ - 1]; }

    /// Inserts (sim, index) into list r when it ranks before the worst slot; true if inserted.
    bool offer(std::int64_t r, float sim, std::int64_t index) {
        return insert_ranked(&sim_[r * k_], &index_[r * k_], k_, sim, index);
    }

    /// Replaces list r by the best k of list r and list `other_row` of `other` (same k).
    void merge_row(std::int64_t r, const TopKLists& other, std::int64_t other_row);

    const float* sims(std::int64_t r) const { return &sim_[r * k_]; }
    const std::int64_t* indices(std::int64_t r) const { return &index_[r * k_]; }

  private:
    std::int64_t rows_ = 0;
    std::int64_t k_ = 1;
    std::vector<float> sim_;
    std::vector<std::int64_t> index_;
};

}  // namespace embgeom::engine
