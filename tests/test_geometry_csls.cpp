// CSLS neighbour lists (geometry/csls.hpp) against a float64 brute-force reference, the cosine
// engine, a planted hub, and across block sizes, budgets and thread counts.
//
// Tolerances: the reference takes the same float32 normalised rows as csls_neighbors (x^ is
// defined as float32, engine::normalize_row) and forms dot products in float64. A float32 dot
// product of two unit vectors of length d is within gamma = (d + 2) 2^-24 / (1 - (d + 2) 2^-24)
// of it whatever the BLAS order (d + 2 rather than d: ||x^|| exceeds 1 by rounding); the score
// fl(2c - fl(r_i + r_j)) adds at most 2^-24 * 2 for the sum (|r| <= 1) and 2^-24 * 4 for the
// difference (|score| <= 4). So |score - reference| <= e = 2 gamma + 6 2^-24 (8.3e-6 at d = 64),
// and two reference scores more than 2e apart keep their order: only those may not swap.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cpu/cpu_all_pairs.hpp"
#include "embgeom/backend.hpp"
#include "embgeom/errors.hpp"
#include "engine/row_normalize.hpp"
#include "engine/tile_plan.hpp"
#include "geometry/csls.hpp"
#include "support/test_support.hpp"

namespace embgeom {
namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

double score_error(std::int64_t d) {
    const double u = std::ldexp(1.0, -24), du = static_cast<double>(d + 2) * u;
    return 2.0 * du / (1.0 - du) + 6.0 * u;
}

struct Table {
    std::int64_t rows = 0, cols = 0;
    std::vector<float> x;
    std::vector<std::uint8_t> valid;
};

/// N(0, 1) rows, about `nan_share` of them poisoned with a NaN (and masked out).
Table random_table(std::int64_t V, std::int64_t d, std::uint64_t seed, double nan_share) {
    Table t{V, d, test::random_table(V, d, seed), std::vector<std::uint8_t>(V, 1)};
    std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ull);
    std::bernoulli_distribution poison(nan_share);
    for (std::int64_t i = 0; i < V; ++i)
        if (poison(rng)) {
            t.x[i * d + static_cast<std::int64_t>(rng() % d)] = kNaN;
            t.valid[i] = 0;
        }
    return t;
}

AllPairsResult cosine_lists(const Table& t, std::int64_t k) {
    MemoryRowSource src(MatrixView<const float>(t.x.data(), t.rows, t.cols));
    AllPairsOptions opt;
    opt.k = k;
    return cpu_all_pairs(src, t.valid, opt, 2);
}

CslsNeighbors run_csls(const Table& t, const std::vector<float>& radius, std::int64_t k,
                       std::int64_t block_rows = 0, std::uint64_t budget = 0, int threads = 2) {
    MemoryRowSource src(MatrixView<const float>(t.x.data(), t.rows, t.cols));
    return csls_neighbors(src, t.valid, radius, k, block_rows, budget, threads);
}

/// Radii from the cosine engine's top-K lists, as the pipeline would compute them.
std::vector<float> engine_radius(const Table& t, std::int64_t K) {
    return csls_radius(cosine_lists(t, K).neighbor_sim, K);
}

/// Float64 CSLS scores of every pair from the float32 normalised rows; NaN for invalid rows.
std::vector<double> reference_scores(const Table& t, const std::vector<float>& radius) {
    const std::int64_t V = t.rows, d = t.cols;
    std::vector<float> xhat(static_cast<std::size_t>(V * d), 0.0f);
    for (std::int64_t i = 0; i < V; ++i)
        if (t.valid[i]) engine::normalize_row(&t.x[i * d], nullptr, d, &xhat[i * d]);
    std::vector<double> s(static_cast<std::size_t>(V * V), std::nan(""));
    for (std::int64_t i = 0; i < V; ++i)
        for (std::int64_t j = 0; j < V; ++j) {
            if (!t.valid[i] || !t.valid[j]) continue;
            double c = 0.0;
            for (std::int64_t q = 0; q < d; ++q)
                c += static_cast<double>(xhat[i * d + q]) * xhat[j * d + q];
            s[i * V + j] = 2.0 * c - static_cast<double>(radius[i]) - radius[j];
        }
    return s;
}

/// Checks the layout contract of any result: padding, no self, no invalid rows, no repeats,
/// score descending with ties by lower index.
void expect_well_formed(const CslsNeighbors& got, const Table& t, std::int64_t k) {
    const std::int64_t V = t.rows;
    const std::int64_t n = std::count(t.valid.begin(), t.valid.end(), 1);
    ASSERT_EQ(got.rows, V);
    ASSERT_EQ(got.k, k);
    ASSERT_EQ(got.index.size(), static_cast<std::size_t>(V * k));
    ASSERT_EQ(got.score.size(), static_cast<std::size_t>(V * k));
    EXPECT_EQ(got.valid_rows, n);
    const std::int64_t filled = std::max<std::int64_t>(0, std::min(k, n - 1));
    for (std::int64_t i = 0; i < V; ++i) {
        const std::int64_t* x = &got.index[i * k];
        const float* s = &got.score[i * k];
        const std::int64_t m = t.valid[i] ? filled : 0;
        std::set<std::int64_t> seen;
        for (std::int64_t p = 0; p < k; ++p) {
            if (p >= m) {
                EXPECT_EQ(x[p], -1) << "row " << i << " slot " << p;
                EXPECT_TRUE(std::isnan(s[p])) << "row " << i << " slot " << p;
                continue;
            }
            ASSERT_TRUE(x[p] >= 0 && x[p] < V && x[p] != i && t.valid[x[p]])
                << "row " << i << " slot " << p << " -> " << x[p];
            EXPECT_TRUE(seen.insert(x[p]).second) << "row " << i << " repeats " << x[p];
            ASSERT_TRUE(std::isfinite(s[p]));
            if (p > 0) {
                EXPECT_TRUE(s[p - 1] > s[p] || (s[p - 1] == s[p] && x[p - 1] < x[p]))
                    << "row " << i << " slots " << p - 1 << ", " << p;
            }
        }
    }
}

std::int64_t occurrences(const std::vector<std::int64_t>& index, std::int64_t token) {
    return std::count(index.begin(), index.end(), token);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(CslsRadius, MeanOfTheFirstFiniteSlots) {
    const std::vector<float> sim = {0.5f, 0.25f, kNaN,   // two neighbours, then padding
                                    kNaN, kNaN,  kNaN,   // invalid row
                                    0.9f, 0.8f,  0.7f};
    const std::vector<float> r = csls_radius(sim, 3);
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[0], 0.375f);
    EXPECT_TRUE(std::isnan(r[1]));
    EXPECT_EQ(r[2], static_cast<float>((static_cast<double>(0.9f) + 0.8f + 0.7f) / 3.0));
    const std::vector<float> r2 = csls_radius(sim, 3, 2);  // K = 2 of 3 slots
    EXPECT_EQ(r2[0], 0.375f);
    EXPECT_TRUE(std::isnan(r2[1]));
    EXPECT_EQ(r2[2], static_cast<float>((static_cast<double>(0.9f) + 0.8f) / 2.0));
    const std::vector<float> r1 = csls_radius(sim, 3, 1);
    EXPECT_EQ(r1[0], 0.5f);
    EXPECT_EQ(r1[2], 0.9f);
    EXPECT_TRUE(csls_radius({}, 4).empty());
    EXPECT_THROW(csls_radius(sim, 4), ResourceError);     // 9 values are not rows of 4
    EXPECT_THROW(csls_radius(sim, 3, 4), ResourceError);  // K beyond the list width
    EXPECT_THROW(csls_radius(sim, 0), ResourceError);
}

TEST(CslsRadius, FromEngineListsWithPadding) {
    // 5 rows, one invalid: every valid row has 3 neighbours in lists of 6 slots.
    Table t = random_table(5, 4, test::fresh_seed(), 0.0);
    t.x[2 * 4 + 1] = kNaN;
    t.valid[2] = 0;
    const AllPairsResult ap = cosine_lists(t, 6);
    const std::vector<float> r = csls_radius(ap.neighbor_sim, 6);
    for (std::int64_t i = 0; i < 5; ++i) {
        if (!t.valid[i]) {
            EXPECT_TRUE(std::isnan(r[i]));
            continue;
        }
        double sum = 0.0;
        for (int p = 0; p < 3; ++p) sum += ap.neighbor_sim[i * 6 + p];
        EXPECT_EQ(r[i], static_cast<float>(sum / 3.0)) << "row " << i;
    }
}

struct RefCase {
    std::int64_t V, d, k;
};

class CslsReference : public ::testing::TestWithParam<RefCase> {};

TEST_P(CslsReference, MatchesFloat64BruteForce) {
    const RefCase c = GetParam();
    const Table t = random_table(c.V, c.d, test::fresh_seed(), 0.05);
    const std::vector<float> radius = engine_radius(t, 10);
    const CslsNeighbors got = run_csls(t, radius, c.k);
    expect_well_formed(got, t, c.k);
    ASSERT_TRUE(got.resident);

    const std::vector<double> ref = reference_scores(t, radius);
    const double err = score_error(c.d), tol = 2.0 * err;
    const std::int64_t V = c.V, k = c.k;
    std::int64_t near_tie_swaps = 0;
    for (std::int64_t i = 0; i < V; ++i) {
        if (!t.valid[i]) continue;
        std::vector<std::pair<double, std::int64_t>> all;
        for (std::int64_t j = 0; j < V; ++j)
            if (j != i && t.valid[j]) all.push_back({ref[i * V + j], j});
        std::sort(all.begin(), all.end(),
                  [](const auto& a, const auto& b) { return a.first > b.first; });
        const std::int64_t m = std::min<std::int64_t>(k, static_cast<std::int64_t>(all.size()));
        const double kth = all[m - 1].first;
        std::set<std::int64_t> listed;
        for (std::int64_t p = 0; p < m; ++p) {
            const std::int64_t j = got.index[i * k + p];
            const float s = got.score[i * k + p];
            listed.insert(j);
            EXPECT_NEAR(s, ref[i * V + j], err) << "pair " << i << ", " << j;
            EXPECT_NEAR(s, all[p].first, err) << "row " << i << " slot " << p;
            // Only near-ties with the K-th reference score may enter instead of another row.
            EXPECT_GE(ref[i * V + j], kth - tol) << "row " << i << " lists " << j;
        }
        for (std::int64_t p = 0; p < static_cast<std::int64_t>(all.size()); ++p) {
            if (all[p].first <= kth + tol) break;
            EXPECT_TRUE(listed.count(all[p].second)) << "row " << i << " misses " << all[p].second;
        }
        for (std::int64_t p = 0; p < m; ++p) near_tie_swaps += listed.count(all[p].second) ? 0 : 1;
        // Symmetry: a pair listed by both rows carries the same bits in both lists.
        for (std::int64_t p = 0; p < m; ++p) {
            const std::int64_t j = got.index[i * k + p];
            for (std::int64_t q = 0; q < k; ++q)
                if (got.index[j * k + q] == i) {
                    EXPECT_EQ(got.score[j * k + q], got.score[i * k + p]) << i << ", " << j;
                }
        }
    }
    EXPECT_LE(near_tie_swaps, 3) << "near-ties should be rare";
}

INSTANTIATE_TEST_SUITE_P(Shapes, CslsReference,
                         ::testing::Values(RefCase{437, 3, 10}, RefCase{613, 17, 10},
                                           RefCase{700, 64, 15}, RefCase{512, 64, 1}));

TEST(Csls, ZeroRadiusGivesTheCosineEnginesListsTimesTwo) {
    // Same normalisation and the same GEMM grid as the engine: 2 c - (0 + 0) = 2 c exactly, so
    // the lists and every bit of the scores must agree with the cosine engine's.
    const Table t = random_table(531, 17, test::fresh_seed(), 0.05);
    const std::int64_t k = 8;
    const AllPairsResult ap = cosine_lists(t, k);
    const CslsNeighbors got = run_csls(t, std::vector<float>(t.rows, 0.0f), k);
    EXPECT_EQ(got.index, ap.neighbor_index);
    std::vector<float> twice(ap.neighbor_sim);
    for (float& v : twice) v *= 2.0f;
    EXPECT_TRUE(same_bits(got.score, twice));
}

struct HubCounts {
    std::int64_t in_cosine = 0, in_csls = 0;  ///< lists (of V - 1 others) holding the hub
    std::int64_t radius_rank = 0;              ///< rows with a larger radius than the hub's
};

/// A cloud x_i = a m + g_i around a unit direction m, g_i ~ N(0, I_d), with `group` rows
/// hub, hub + 1, ... replaced by a m + 0.05 g_i: points near the mean direction, closer to most
/// x_i (cos ~ a / sqrt(a^2 + d)) than the x_i are to each other (cos ~ a^2 / (a^2 + d)), so they
/// sit in many cosine lists. Counts how many lists hold the row `hub`.
HubCounts planted_hub(std::int64_t d, double a, std::int64_t group) {
    const std::int64_t V = 500, k = 10, hub = 217;
    std::mt19937_64 rng(test::fresh_seed());
    std::normal_distribution<double> g;
    std::vector<double> m(static_cast<std::size_t>(d));
    double mn = 0.0;
    for (double& v : m) {
        v = g(rng);
        mn += v * v;
    }
    for (double& v : m) v /= std::sqrt(mn);
    Table t{V, d, std::vector<float>(V * d), std::vector<std::uint8_t>(V, 1)};
    for (std::int64_t i = 0; i < V; ++i) {
        const double spread = (i >= hub && i < hub + group) ? 0.05 : 1.0;
        for (std::int64_t q = 0; q < d; ++q)
            t.x[i * d + q] = static_cast<float>(a * m[q] + spread * g(rng));
    }
    const AllPairsResult ap = cosine_lists(t, k);
    const std::vector<float> radius = csls_radius(ap.neighbor_sim, k);
    const CslsNeighbors got = run_csls(t, radius, k);
    expect_well_formed(got, t, k);
    HubCounts h;
    h.in_cosine = occurrences(ap.neighbor_index, hub);
    h.in_csls = occurrences(got.index, hub);
    h.radius_rank = std::count_if(radius.begin(), radius.end(),
                                  [&](float r) { return r > radius[hub]; });
    std::cerr << "[ hub      ] d " << d << ", group " << group << ": in " << h.in_cosine
              << " cosine lists, " << h.in_csls << " CSLS lists of " << V - 1
              << "; radius rank " << h.radius_rank << "\n";
    return h;
}

TEST(CslsHubness, OneHubNearTheMeanDirection) {
    // A lone hub keeps part of its lists: its penalty r_h, the mean of its 10 best cosines, is
    // only somewhat above its cosine to a typical row. Measured over 52 seeds: 377-410 cosine
    // lists, CSLS keeps 17-34 % of them (mean 24 %, sd 3 %); the bound is half.
    const HubCounts h = planted_hub(32, 8.0, 1);
    EXPECT_GE(h.in_cosine, 300);
    EXPECT_LE(h.in_csls * 2, h.in_cosine);
    EXPECT_LE(h.radius_rank, 2);
}

TEST(CslsHubness, TightHubGroupNearTheMeanDirection) {
    // Six near-copies near the mean direction: each one's radius is ~1 (its group mates), so
    // CSLS drops them from every list but the group's own (measured: 375-398 cosine lists, 5-7
    // CSLS lists).
    const HubCounts h = planted_hub(128, 4.0, 6);
    EXPECT_GE(h.in_cosine, 300);
    EXPECT_LE(h.in_csls, 20);
    EXPECT_LE(h.radius_rank, 5);  // only its group mates have larger radii
}

TEST(Csls, BitIdenticalForAnyBlockSizeBudgetAndThreads) {
    const Table t = random_table(613, 17, test::fresh_seed(), 0.05);
    const std::int64_t k = 12;
    const std::vector<float> radius = engine_radius(t, 10);
    const CslsNeighbors base = run_csls(t, radius, k, 0, 0, 1);
    ASSERT_TRUE(base.resident);
    expect_well_formed(base, t, k);
    struct Config {
        std::int64_t block_rows;
        std::uint64_t budget;
        int threads;
        bool resident;
    };
    // kShort: a budget a few bytes short of the resident plan (computed per thread count below).
    constexpr std::uint64_t kShort = ~std::uint64_t{0};
    const Config configs[] = {{7, 0, 1, true},       {7, 0, 2, true},       {64, 0, 1, true},
                              {64, 0, 2, true},      {150, 0, 2, true},     {613, 0, 1, true},
                              {613, 0, 2, true},     {0, 1, 1, false},      {0, 1, 2, false},
                              {0, kShort, 1, false}, {0, kShort, 2, false}, {150, 1, 2, false}};
    const std::int64_t n = base.valid_rows, G = engine::default_grid_side(n);
    for (Config c : configs) {
        if (c.budget == kShort)
            c.budget = engine::working_set_bytes(n, t.cols, k, c.threads, G, G, true) - 8;
        SCOPED_TRACE("block_rows " + std::to_string(c.block_rows) + ", budget " +
                     std::to_string(c.budget) + ", threads " + std::to_string(c.threads));
        const CslsNeighbors got = run_csls(t, radius, k, c.block_rows, c.budget, c.threads);
        EXPECT_EQ(got.resident, c.resident);
        EXPECT_EQ(got.index, base.index);
        EXPECT_TRUE(same_bits(got.score, base.score));
    }
}

TEST(Csls, PadsWhenKReachesTheValidRows) {
    Table t = random_table(10, 5, test::fresh_seed(), 0.0);
    for (const std::int64_t bad : {1, 4, 8}) {
        t.x[bad * 5 + 2] = kNaN;
        t.valid[bad] = 0;
    }
    const std::vector<float> radius = engine_radius(t, 3);
    for (const std::int64_t k : {6, 7, 10, 25}) {
        SCOPED_TRACE("k " + std::to_string(k));
        const CslsNeighbors got = run_csls(t, radius, k, 0, 0, 2);
        expect_well_formed(got, t, k);  // 6 neighbours per valid row, the rest padded
        const std::vector<double> ref = reference_scores(t, radius);
        for (std::int64_t i = 0; i < 10; ++i)
            for (std::int64_t p = 0; t.valid[i] && p < 6; ++p)
                EXPECT_NEAR(got.score[i * k + p], ref[i * 10 + got.index[i * k + p]],
                            score_error(5));
    }
    // One valid row: no neighbours (its radius is NaN and unused). No valid row at all.
    Table one = t;
    std::fill(one.valid.begin(), one.valid.end(), 0);
    one.valid[3] = 1;
    std::vector<float> nan_radius(10, kNaN);
    expect_well_formed(run_csls(one, nan_radius, 4), one, 4);
    Table none = t;
    std::fill(none.valid.begin(), none.valid.end(), 0);
    expect_well_formed(run_csls(none, nan_radius, 4), none, 4);
}

TEST(Csls, EmptyMaskMeansEveryRowAndContractsAreChecked) {
    Table t = random_table(40, 6, test::fresh_seed(), 0.0);
    const std::vector<float> radius = engine_radius(t, 5);
    MemoryRowSource src(MatrixView<const float>(t.x.data(), t.rows, t.cols));
    const CslsNeighbors all = csls_neighbors(src, {}, radius, 5);
    EXPECT_EQ(all.index, run_csls(t, radius, 5).index);

    EXPECT_THROW(csls_neighbors(src, t.valid, std::vector<float>(39, 0.0f), 5), ResourceError);
    EXPECT_THROW(csls_neighbors(src, std::vector<std::uint8_t>(39, 1), radius, 5), ResourceError);
    EXPECT_THROW(csls_neighbors(src, t.valid, radius, 0), ResourceError);
    std::vector<float> bad_radius = radius;
    bad_radius[7] = kNaN;
    EXPECT_THROW(csls_neighbors(src, t.valid, bad_radius, 5), ResourceError);
    t.x[11 * 6] = std::numeric_limits<float>::infinity();  // marked valid, not finite
    EXPECT_THROW(csls_neighbors(src, t.valid, radius, 5), ResourceError);  // a broken contract
}

// Backend::csls_neighbors on the CPU backend is csls_neighbors itself: the same bits for any
// options, which take only block_rows and memory_budget (precision, centre, sink and the rest are
// ignored, as the interface says).
TEST(Csls, CpuBackendGivesTheDirectFunctionsBits) {
    const Table t = random_table(413, 9, test::fresh_seed(), 0.05);
    const std::vector<float> radius = engine_radius(t, 6);
    MemoryRowSource src(MatrixView<const float>(t.x.data(), t.rows, t.cols));
    const std::int64_t n = std::count(t.valid.begin(), t.valid.end(), 1);
    for (const int threads : {1, 2}) {
        const std::unique_ptr<Backend> cpu = make_cpu_backend(threads);
        AllPairsOptions streamed;
        streamed.memory_budget = 1;
        AllPairsOptions blocks;
        blocks.block_rows = 64;
        AllPairsOptions extras;  // fields the CSLS pass ignores
        extras.precision = Precision::kFp16;
        extras.center = std::vector<double>(static_cast<std::size_t>(t.cols), 0.5);
        extras.hist_bins = 7;
        extras.accumulate_row_sums = true;
        for (const AllPairsOptions* o : {&streamed, &blocks, &extras}) {
            for (const std::int64_t k : {std::int64_t{5}, n + 3}) {
                SCOPED_TRACE("threads " + std::to_string(threads) + ", k " + std::to_string(k) +
                             ", block_rows " + std::to_string(o->block_rows) + ", budget " +
                             std::to_string(o->memory_budget));
                const CslsNeighbors want = csls_neighbors(src, t.valid, radius, k, o->block_rows,
                                                          o->memory_budget, threads);
                const CslsNeighbors got = cpu->csls_neighbors(src, t.valid, radius, k, *o);
                EXPECT_EQ(got.rows, want.rows);
                EXPECT_EQ(got.k, want.k);
                EXPECT_EQ(got.valid_rows, want.valid_rows);
                EXPECT_EQ(got.resident, want.resident);
                EXPECT_EQ(got.index, want.index);
                EXPECT_TRUE(same_bits(got.score, want.score));
            }
        }
        EXPECT_FALSE(cpu->csls_neighbors(src, t.valid, radius, 5, streamed).resident);
        // An empty mask means every row; the contract checks are the function's.
        Table all = t;
        std::fill(all.valid.begin(), all.valid.end(), 1);
        for (std::int64_t i = 0; i < all.rows * all.cols; ++i)
            if (!std::isfinite(all.x[i])) all.x[i] = 0.25f;
        MemoryRowSource all_src(MatrixView<const float>(all.x.data(), all.rows, all.cols));
        const std::vector<float> all_radius = engine_radius(all, 6);
        EXPECT_EQ(cpu->csls_neighbors(all_src, {}, all_radius, 5, AllPairsOptions{}).index,
                  csls_neighbors(all_src, all.valid, all_radius, 5, 0, 0, threads).index);
        EXPECT_THROW(cpu->csls_neighbors(src, t.valid, radius, 0, AllPairsOptions{}),
                     ResourceError);
        EXPECT_THROW(
            cpu->csls_neighbors(src, t.valid, std::vector<float>(3, 0.0f), 5, AllPairsOptions{}),
            ResourceError);
    }
}

}  // namespace
}  // namespace embgeom
