// Top-K lists: the total order (similarity descending, ties -> lower index), insertion and merge.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "engine/all_pairs_merge.hpp"
#include "engine/topk_lists.hpp"
#include "support/test_support.hpp"

namespace {

using embgeom::engine::kEmptyIndex;
using embgeom::engine::kEmptySim;
using embgeom::engine::ranks_before;
using embgeom::engine::TopKLists;

struct Cand {
    float sim;
    std::int64_t index;
};

/// The best k of cands under the total order, padded with empty slots.
std::vector<Cand> expected_topk(std::vector<Cand> cands, std::int64_t k) {
    std::sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
        return ranks_before(a.sim, a.index, b.sim, b.index);
    });
    cands.resize(static_cast<std::size_t>(k), Cand{kEmptySim, kEmptyIndex});
    return cands;
}

void expect_row(const TopKLists& l, std::int64_t r, const std::vector<Cand>& want) {
    for (std::int64_t p = 0; p < l.k(); ++p) {
        EXPECT_EQ(l.indices(r)[p], want[p].index) << "slot " << p;
        EXPECT_EQ(l.sims(r)[p], want[p].sim) << "slot " << p;
    }
}

/// Candidates with many exact ties: similarities from a small set of values.
std::vector<Cand> tied_candidates(std::mt19937_64& rng, int count) {
    std::uniform_int_distribution<int> level(-4, 4);
    std::vector<Cand> c;
    for (int i = 0; i < count; ++i) c.push_back({0.125f * level(rng), i * 3 + 1});
    std::shuffle(c.begin(), c.end(), rng);
    return c;
}

TEST(EngineTopK, OrderBreaksTiesByLowerIndex) {
    EXPECT_TRUE(ranks_before(0.5f, 9, 0.25f, 1));
    EXPECT_TRUE(ranks_before(0.5f, 3, 0.5f, 7));
    EXPECT_FALSE(ranks_before(0.5f, 7, 0.5f, 3));
    EXPECT_FALSE(ranks_before(0.5f, 3, 0.5f, 3));  // strict
    EXPECT_TRUE(ranks_before(-1.0f, 1000, kEmptySim, kEmptyIndex));

    TopKLists l(1, 3);
    EXPECT_EQ(l.threshold(0), kEmptySim);
    EXPECT_TRUE(l.offer(0, 0.5f, 7));
    EXPECT_TRUE(l.offer(0, 0.5f, 3));
    EXPECT_TRUE(l.offer(0, 0.9f, 10));
    EXPECT_EQ(l.threshold(0), 0.5f);
    EXPECT_TRUE(l.offer(0, 0.5f, 5));   // ties with the worst but has a lower index
    EXPECT_FALSE(l.offer(0, 0.5f, 6));  // ties with the worst, higher index
    EXPECT_FALSE(l.offer(0, 0.1f, 0));
    expect_row(l, 0, {{0.9f, 10}, {0.5f, 3}, {0.5f, 5}});
}

TEST(EngineTopK, AnyInsertionOrderGivesTheSameList) {
    std::mt19937_64 rng(embgeom::test::fresh_seed());
    for (std::int64_t k : {1, 2, 5, 40, 200}) {
        const std::vector<Cand> cands = tied_candidates(rng, 120);
        TopKLists l(2, k);
        for (const Cand& c : cands) l.offer(1, c.sim, c.index);
        expect_row(l, 1, expected_topk(cands, k));
        expect_row(l, 0, expected_topk({}, k));  // untouched row stays empty
    }
}

TEST(EngineTopK, MergeOfPartialListsEqualsOneList) {
    std::mt19937_64 rng(embgeom::test::fresh_seed());
    for (std::int64_t k : {1, 3, 10, 64}) {
        const std::vector<Cand> cands = tied_candidates(rng, 100);
        // Split the candidates among 3 partial lists at random (each candidate once).
        TopKLists parts[3] = {TopKLists(1, k), TopKLists(1, k), TopKLists(1, k)};
        std::uniform_int_distribution<int> who(0, 2);
        for (const Cand& c : cands) parts[who(rng)].offer(0, c.sim, c.index);

        std::vector<float> s(k);
        std::vector<std::int64_t> x(k);
        embgeom::engine::merge_topk(parts[0].sims(0), parts[0].indices(0), parts[1].sims(0),
                                    parts[1].indices(0), k, s.data(), x.data());
        const std::vector<Cand> both = expected_topk(cands, k);
        TopKLists acc(1, k);
        acc.merge_row(0, parts[0], 0);
        acc.merge_row(0, parts[1], 0);
        acc.merge_row(0, parts[2], 0);
        expect_row(acc, 0, both);

        // merge_topk of two of them against the reference built from their candidates.
        std::vector<Cand> two;
        for (int p = 0; p < 2; ++p)
            for (std::int64_t i = 0; i < k; ++i)
                if (parts[p].indices(0)[i] != kEmptyIndex)
                    two.push_back({parts[p].sims(0)[i], parts[p].indices(0)[i]});
        const std::vector<Cand> want = expected_topk(two, k);
        for (std::int64_t p = 0; p < k; ++p) {
            EXPECT_EQ(x[p], want[p].index);
            EXPECT_EQ(s[p], want[p].sim);
        }
    }
}

TEST(EngineTopK, MergeWithEmptyListsAndShortLists) {
    TopKLists a(1, 4), b(1, 4);
    a.offer(0, 0.3f, 2);
    a.merge_row(0, b, 0);  // empty other: unchanged
    expect_row(
        a, 0,
        {{0.3f, 2}, {kEmptySim, kEmptyIndex}, {kEmptySim, kEmptyIndex}, {kEmptySim, kEmptyIndex}});
    b.offer(0, 0.3f, 1);
    b.offer(0, -0.2f, 9);
    a.merge_row(0, b, 0);
    expect_row(a, 0, {{0.3f, 1}, {0.3f, 2}, {-0.2f, 9}, {kEmptySim, kEmptyIndex}});

    a.reset(3);
    EXPECT_EQ(a.rows(), 3);
    for (std::int64_t r = 0; r < 3; ++r) EXPECT_EQ(a.threshold(r), kEmptySim);
}

// The result format's lists ([rows, k], padded with -1 / NaN) of two shares merge into the lists
// of all their candidates: rows with many ties, rows short of k on one side or both, empty rows.
TEST(EngineTopK, ResultListsOfTwoSharesMergeIntoTheListsOfAllTheirCandidates) {
    std::mt19937_64 rng(embgeom::test::fresh_seed());
    for (std::int64_t k : {1, 4, 10, 40}) {
        const std::int64_t rows = 257;
        std::vector<std::int64_t> index[2];
        std::vector<float> sim[2];
        std::vector<std::vector<Cand>> all(rows);
        for (int share = 0; share < 2; ++share) {
            index[share].assign(static_cast<std::size_t>(rows * k), -1);
            sim[share].assign(static_cast<std::size_t>(rows * k),
                              std::numeric_limits<float>::quiet_NaN());
        }
        std::uniform_int_distribution<int> count(0, static_cast<int>(2 * k));
        for (std::int64_t r = 0; r < rows; ++r) {
            const std::vector<Cand> cands = tied_candidates(rng, count(rng) + count(rng));
            std::vector<Cand> of_share[2];
            for (std::size_t c = 0; c < cands.size(); ++c) of_share[rng() % 2].push_back(cands[c]);
            for (int share = 0; share < 2; ++share) {
                const std::vector<Cand> kept = expected_topk(of_share[share], k);
                for (std::int64_t p = 0; p < k; ++p) {
                    if (kept[p].index == kEmptyIndex) break;
                    index[share][r * k + p] = kept[p].index;
                    sim[share][r * k + p] = kept[p].sim;
                    all[r].push_back(kept[p]);
                }
            }
        }
        embgeom::engine::merge_neighbor_lists(rows, k, index[0], sim[0], index[1], sim[1]);
        for (std::int64_t r = 0; r < rows; ++r) {
            const std::vector<Cand> want = expected_topk(all[r], k);
            for (std::int64_t p = 0; p < k; ++p) {
                const bool empty = want[p].index == kEmptyIndex;
                EXPECT_EQ(index[0][r * k + p], empty ? -1 : want[p].index)
                    << "k " << k << " row " << r << " slot " << p;
                if (empty)
                    EXPECT_TRUE(std::isnan(sim[0][r * k + p])) << "k " << k << " row " << r;
                else
                    EXPECT_EQ(sim[0][r * k + p], want[p].sim) << "k " << k << " row " << r;
            }
        }
    }
}

}  // namespace
