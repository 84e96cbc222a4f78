#include "engine/all_pairs_merge.hpp"

#include <algorithm>
#include <limits>

#include "embgeom/errors.hpp"
#include "engine/fixed_point.hpp"
#include "engine/topk_lists.hpp"

namespace embgeom::engine {

void merge_neighbor_lists(std::int64_t n, std::int64_t k, std::vector<std::int64_t>& index,
                          std::vector<float>& sim, const std::vector<std::int64_t>& other_index,
                          const std::vector<float>& other_sim) {
    if (k <= 0 || n <= 0) return;
    const auto slots = static_cast<std::size_t>(n * k);
    EMBGEOM_EXPECTS(index.size() == slots && sim.size() == slots && other_index.size() == slots &&
                        other_sim.size() == slots,
                    "both neighbour lists are [rows, k]");
    // Each row goes through merge_topk, the engines' one linear merge of two sorted lists: its
    // slots are translated from the result's padding (-1, NaN) to the engine's empty slot
    // (kEmptyIndex, -inf), which sorts last as the padding does.
    const auto ku = static_cast<std::size_t>(k);
#pragma omp parallel
    {
        std::vector<float> a_sim(ku), b_sim(ku), out_sim(ku);
        std::vector<std::int64_t> a_index(ku), b_index(ku), out_index(ku);
        const auto take = [&](const std::int64_t* idx, const float* sims, std::int64_t* to_index,
                              float* to_sim) {
            for (std::size_t s = 0; s < ku; ++s) {
                const bool empty = idx[s] < 0;
                to_index[s] = empty ? kEmptyIndex : idx[s];
                to_sim[s] = empty ? kEmptySim : sims[s];
            }
        };
#pragma omp for schedule(static)
        for (std::int64_t i = 0; i < n; ++i) {
            const std::size_t at = static_cast<std::size_t>(i) * ku;
            take(index.data() + at, sim.data() + at, a_index.data(), a_sim.data());
            take(other_index.data() + at, other_sim.data() + at, b_index.data(), b_sim.data());
            merge_topk(a_sim.data(), a_index.data(), b_sim.data(), b_index.data(), k,
                       out_sim.data(), out_index.data());
            for (std::size_t s = 0; s < ku; ++s) {
                const bool empty = out_index[s] == kEmptyIndex;
                index[at + s] = empty ? -1 : out_index[s];
                sim[at + s] = empty ? std::numeric_limits<float>::quiet_NaN() : out_sim[s];
            }
        }
    }
}

void absorb_csls_share(CslsNeighbors& into, const CslsNeighbors& other) {
    EMBGEOM_EXPECTS(other.rows == into.rows && other.k == into.k,
                    "every share's CSLS lists have one shape");
    merge_neighbor_lists(into.rows, into.k, into.index, into.score, other.index, other.score);
    into.resident = into.resident && other.resident;
}

namespace {

// The best kc of each row of two candidate lists [n, kc] (sorted best first by the fast cosine,
// over disjoint pairs), into a.
void merge_candidates(AllPairsPartial& a, const AllPairsPartial& b, std::int64_t n) {
    const int kc = a.candidate_width;
    EMBGEOM_EXPECTS(b.candidate_width == kc &&
                        a.candidate_index.size() == static_cast<std::size_t>(n) * kc &&
                        b.candidate_index.size() == a.candidate_index.size(),
                    "every share kept K' candidates per row");
#pragma omp parallel
    {
        std::vector<float> out_s(static_cast<std::size_t>(kc));
        std::vector<std::int64_t> out_i(static_cast<std::size_t>(kc));
#pragma omp for schedule(static)
        for (std::int64_t i = 0; i < n; ++i) {
            const std::size_t at = static_cast<std::size_t>(i) * kc;
            merge_topk(a.candidate_sim.data() + at, a.candidate_index.data() + at,
                       b.candidate_sim.data() + at, b.candidate_index.data() + at, kc,
                       out_s.data(), out_i.data());
            std::copy(out_s.begin(), out_s.end(), a.candidate_sim.begin() + at);
            std::copy(out_i.begin(), out_i.end(), a.candidate_index.begin() + at);
        }
    }
}

}  // namespace

void absorb_share(AllPairsResult& into, AllPairsPartial& into_sums, const AllPairsResult& other,
                  const AllPairsPartial& other_sums, const AllPairsOptions& opt) {
    const std::int64_t n = into.rows, k = into.k;
    EMBGEOM_EXPECTS(other.precision == into.precision && other.rows == n && other.k == k &&
                        other.histogram.size() == into.histogram.size(),
                    "every share ran the same plan");
    merge_neighbor_lists(n, k, into.neighbor_index, into.neighbor_sim, other.neighbor_index,
                         other.neighbor_sim);
    for (std::size_t b = 0; b < into.histogram.size(); ++b) into.histogram[b] += other.histogram[b];
    into.gflop += other.gflop;

    into.duplicates.insert(into.duplicates.end(), other.duplicates.begin(),
                           other.duplicates.end());
    std::sort(into.duplicates.begin(), into.duplicates.end(),
              [](const DuplicatePair& x, const DuplicatePair& y) {
                  return x.i != y.i ? x.i < y.i : x.j < y.j;
              });
    const auto keep = static_cast<std::size_t>(std::max<std::int64_t>(0, opt.max_dup_pairs));
    if (into.duplicates.size() > keep) into.duplicates.resize(keep);

    into_sums.cos_sq_fixed += other_sums.cos_sq_fixed;
    into_sums.duplicates_found += other_sums.duplicates_found;
    if (opt.accumulate_row_sums) {
        EMBGEOM_EXPECTS(into_sums.row_sums.size() == static_cast<std::size_t>(n) &&
                            other_sums.row_sums.size() == into_sums.row_sums.size(),
                        "every share summed its rows");
        for (std::size_t i = 0; i < into_sums.row_sums.size(); ++i)
            into_sums.row_sums[i] += other_sums.row_sums[i];
    }
    if (into_sums.candidate_width > 0 || other_sums.candidate_width > 0)
        merge_candidates(into_sums, other_sums, n);
}

void finish_shares(AllPairsResult& out, const AllPairsPartial& sums,
                   const std::vector<std::uint8_t>& valid, const AllPairsOptions& opt) {
    out.pair_cos_sq_sum =
        static_cast<double>(sums.cos_sq_fixed) / static_cast<double>(kCosSqScale);
    if (opt.accumulate_row_sums) {
        out.row_sum_tiled.assign(static_cast<std::size_t>(out.rows),
                                 std::numeric_limits<double>::quiet_NaN());
        for (std::int64_t i = 0; i < out.rows; ++i)
            if (valid[static_cast<std::size_t>(i)])
                out.row_sum_tiled[i] = static_cast<double>(sums.row_sums[i]) / kCosScale;
    }
    out.duplicates_truncated =
        sums.duplicates_found > static_cast<unsigned long long>(std::max<std::int64_t>(0, opt.max_dup_pairs));
}

unsigned long long duplicates_found_of(const AllPairsResult& share, const AllPairsOptions& opt) {
    if (share.duplicates_truncated)
        return static_cast<unsigned long long>(std::max<std::int64_t>(0, opt.max_dup_pairs)) + 1;
    return share.duplicates.size();
}

}  // namespace embgeom::engine
