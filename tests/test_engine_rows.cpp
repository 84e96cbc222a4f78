// Row normalisation, the row-mean identity and the bounded duplicate list.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "engine/duplicate_list.hpp"
#include "engine/fixed_point.hpp"
#include "engine/row_normalize.hpp"
#include "support/test_support.hpp"

namespace {

using namespace embgeom::engine;

TEST(EngineRows, NormalizeMatchesFloat64AndHandlesZeroRows) {
    std::mt19937_64 rng(embgeom::test::fresh_seed());
    std::normal_distribution<float> nd(0.3f, 2.0f);
    const std::int64_t d = 37;
    std::vector<float> x(d), out(d);
    std::vector<double> c(d);
    for (auto& v : x) v = nd(rng);
    for (auto& v : c) v = nd(rng);
    double ss = 0;
    for (int k = 0; k < d; ++k) ss += (x[k] - c[k]) * (x[k] - c[k]);
    const double norm = normalize_row(x.data(), c.data(), d, out.data());
    EXPECT_DOUBLE_EQ(norm, std::sqrt(ss));
    double n2 = 0;
    for (int k = 0; k < d; ++k) {
        EXPECT_EQ(out[k], static_cast<float>((x[k] - c[k]) / norm));
        n2 += static_cast<double>(out[k]) * out[k];
    }
    EXPECT_NEAR(n2, 1.0, 1e-6);

    // A row equal to the center is a zero row: zero vector, norm 0.
    std::vector<double> same(x.begin(), x.end());
    EXPECT_EQ(normalize_row(x.data(), same.data(), d, out.data()), 0.0);
    for (float v : out) EXPECT_EQ(v, 0.0f);
    std::vector<float> bad = x;
    bad[3] = NAN;
    EXPECT_FALSE(std::isfinite(normalize_row(bad.data(), nullptr, d, out.data())));
}

TEST(EngineRows, RowMeanIdentity) {
    EXPECT_TRUE(std::isnan(row_mean_identity(1.0, false, 1)));
    EXPECT_DOUBLE_EQ(row_mean_identity(3.0, false, 5), 0.5);
    EXPECT_DOUBLE_EQ(row_mean_identity(0.0, true, 5), 0.0);  // zero row: cosine 0 with all
}

TEST(EngineRows, FixedPointIsRoundToNearest) {
    EXPECT_EQ(cos_sq_fixed(1.0f), 1 << 24);
    EXPECT_EQ(cos_sq_fixed(-0.5f), 1 << 22);
    EXPECT_EQ(cos_sq_fixed(0.0f), 0);
    EXPECT_EQ(cos_fixed(-1.0f), -(std::int64_t{1} << 32));
    EXPECT_EQ(cos_fixed(0.25f), std::int64_t{1} << 30);
}

TEST(EngineRows, DuplicateListKeepsFirstPairsWhateverTheOrder) {
    std::mt19937_64 rng(embgeom::test::fresh_seed());
    std::vector<embgeom::DuplicatePair> all;
    for (std::int64_t i = 0; i < 60; ++i)
        for (std::int64_t j = i + 1; j < 60; j += 3) all.push_back({i, j, 0.999f});
    for (std::int64_t cap : {0, 1, 10, 500, 100000}) {
        std::shuffle(all.begin(), all.end(), rng);
        DuplicateList parts[3] = {DuplicateList(cap), DuplicateList(cap), DuplicateList(cap)};
        for (std::size_t p = 0; p < all.size(); ++p) parts[p % 3].add(all[p].i, all[p].j, 0.999f);
        DuplicateList merged(cap);
        for (auto& p : parts) merged.absorb(p);
        bool truncated = false;
        const auto got = merged.finish(&truncated);
        auto want = all;
        std::sort(want.begin(), want.end(),
                  [](const auto& a, const auto& b) { return a.i != b.i ? a.i < b.i : a.j < b.j; });
        const bool cut = static_cast<std::int64_t>(want.size()) > cap;
        if (cut) want.resize(static_cast<std::size_t>(cap));
        EXPECT_EQ(truncated, cut) << cap;
        ASSERT_EQ(got.size(), want.size());
        for (std::size_t p = 0; p < got.size(); ++p) {
            EXPECT_EQ(got[p].i, want[p].i);
            EXPECT_EQ(got[p].j, want[p].j);
        }
    }
}

}  // namespace
