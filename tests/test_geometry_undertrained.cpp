// Under-trained token indicators (Land & Bartolo 2024) and the reference-set helpers. numpy
// re-implements the reference code's indicator in float64; planted tables check the ranking.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "embgeom/errors.hpp"
#include "embgeom/row_source.hpp"
#include "geometry/principal_directions.hpp"
#include "geometry/reference_tokens.hpp"
#include "geometry/undertrained_indicators.hpp"
#include "support/test_support.hpp"

namespace embgeom {
namespace {

using test::read_doubles;
using test::write_binary;

std::vector<double> unit_gaussian(std::int64_t d, std::mt19937_64& rng) {
    std::normal_distribution<double> g;
    std::vector<double> v(static_cast<std::size_t>(d));
    double n = 0.0;
    for (double& x : v) {
        x = g(rng);
        n += x * x;
    }
    for (double& x : v) x /= std::sqrt(n);
    return v;
}

/// A table where every token carries a large, token-dependent component along u1 (the first
/// PC); `near` tokens sit close to a common point p (plus their u1 component), the others are
/// N(offset, I).
struct PlantedTable {
    std::int64_t V = 0, d = 0;
    std::vector<float> x;
    std::vector<double> u1;
};

PlantedTable planted_table(std::int64_t V, std::int64_t d, const std::set<std::int64_t>& near,
                           const std::vector<double>& p, const std::vector<double>& offset,
                           std::mt19937_64& rng) {
    PlantedTable t{V, d, std::vector<float>(static_cast<std::size_t>(V * d)),
                   unit_gaussian(d, rng)};
    std::normal_distribution<double> g;
    for (std::int64_t i = 0; i < V; ++i) {
        const double a = 30.0 + 20.0 * g(rng);
        const bool planted = near.count(i) > 0;
        for (std::int64_t j = 0; j < d; ++j) {
            const double base = planted ? p[j] + 0.05 * g(rng) : offset[j] + g(rng);
            t.x[i * d + j] = static_cast<float>(base + a * t.u1[j]);
        }
    }
    return t;
}

std::set<std::int64_t> lowest(const std::vector<double>& v, std::size_t k) {
    std::vector<std::int64_t> ids;
    for (std::size_t i = 0; i < v.size(); ++i)
        if (std::isfinite(v[i])) ids.push_back(static_cast<std::int64_t>(i));
    std::sort(ids.begin(), ids.end(), [&](std::int64_t a, std::int64_t b) { return v[a] < v[b]; });
    ids.resize(std::min(k, ids.size()));
    return {ids.begin(), ids.end()};
}

TEST(UndertrainedIndicators, RanksPlantedTokensFirstAndMatchesNumpy) {
    const std::int64_t V = 2000, d = 32;
    const std::uint64_t seed = test::fresh_seed();
    std::mt19937_64 rng(seed);
    std::vector<std::int64_t> reference;
    for (std::int64_t i = 100; i < 120; ++i) reference.push_back(i);
    std::set<std::int64_t> near(reference.begin(), reference.end());
    for (std::int64_t i = 1500; i < 1510; ++i) near.insert(i);  // untrained but not listed
    std::vector<double> p = unit_gaussian(d, rng);
    for (double& c : p) c *= std::sqrt(static_cast<double>(d));
    const PlantedTable t = planted_table(V, d, near, p, std::vector<double>(d, 0.0), rng);

    std::vector<std::uint8_t> valid(V, 1);
    valid[3] = valid[1700] = 0;
    valid[119] = 0;  // an invalid reference token: excluded from the reference mean
    std::normal_distribution<double> g;
    std::vector<double> bias(static_cast<std::size_t>(d));
    for (double& b : bias) b = 0.3 * g(rng);

    MemoryRowSource src(MatrixView<const float>(t.x.data(), V, d));
    UndertrainedOptions opt;
    opt.bias = bias;
    opt.block_rows = 333;
    const UndertrainedIndicators ind = undertrained_indicators(src, valid, reference, opt);

    ASSERT_EQ(ind.indicator.size(), static_cast<std::size_t>(V));
    EXPECT_FALSE(ind.reference_automatic);
    EXPECT_EQ(ind.reference_ids.size(), 19u);
    EXPECT_TRUE(std::isnan(ind.indicator[3]));
    EXPECT_TRUE(std::isnan(ind.indicator[1700]));
    EXPECT_TRUE(std::isnan(ind.indicator[119]));
    EXPECT_GT(
        std::fabs(std::inner_product(ind.first_pc.begin(), ind.first_pc.end(), t.u1.begin(), 0.0)),
        0.999);

    std::set<std::int64_t> expected(near);
    expected.erase(119);
    EXPECT_EQ(lowest(ind.indicator, expected.size()), expected);
    for (std::int64_t id : expected) EXPECT_LT(ind.indicator[id], 0.05) << "token " << id;
    // The bottom-2% threshold: the candidates are the 29 planted tokens plus about 10 others.
    EXPECT_EQ(ind.threshold_quantile, 0.02);
    EXPECT_EQ(ind.threshold, masked_quantile(ind.indicator, valid, 0.02));
    ASSERT_GE(ind.candidates.size(), expected.size());
    EXPECT_LE(ind.candidates.size(), 45u);
    EXPECT_EQ(
        std::set<std::int64_t>(ind.candidates.begin(), ind.candidates.begin() + expected.size()),
        expected);
    for (std::size_t k = 1; k < ind.candidates.size(); ++k)
        EXPECT_LE(ind.indicator[ind.candidates[k - 1]], ind.indicator[ind.candidates[k]]);

    // The reference code's arithmetic (cohere-ai/magikarp embedding_distance_metrics), in numpy.
    test::TempDir dir;
    write_binary(dir.file("x.bin"), t.x);
    write_binary(dir.file("valid.bin"), valid);
    write_binary(dir.file("bias.bin"), bias);
    std::vector<std::int64_t> ref_used(ind.reference_ids);
    write_binary(dir.file("ref.bin"), ref_used);
    const auto r = test::run_python(
        R"(
import sys, numpy as np
V, d, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
X = np.fromfile(path + "/x.bin", dtype=np.float32).reshape(V, d).astype(np.float64)
m = np.fromfile(path + "/valid.bin", dtype=np.uint8).astype(bool)
Z = X - np.fromfile(path + "/bias.bin", dtype=np.float64)
ref = np.fromfile(path + "/ref.bin", dtype=np.int64)
w, U = np.linalg.eigh(np.cov(Z[m], rowvar=False, ddof=0))
u = U[:, -1]
Y = Z - np.outer(Z @ u, u)
r = Y[ref].mean(axis=0)
ind = 1 - Y @ r / (np.linalg.norm(Y, axis=1) * np.linalg.norm(r)).clip(min=1e-6)
ind[~m] = np.nan
ind.tofile(path + "/ind.bin")
print(repr(np.percentile(ind[m], 2.0)))
)",
        std::to_string(V) + " " + std::to_string(d) + " " + test::shell_quote(dir.path()));
    const std::vector<double> ind_np = read_doubles(dir.file("ind.bin"));
    ASSERT_EQ(ind_np.size(), static_cast<std::size_t>(V));
    for (std::int64_t i = 0; i < V; ++i) {
        if (!valid[i]) continue;
        ASSERT_NEAR(ind.indicator[i], ind_np[i], 1e-10) << "token " << i;
    }
    EXPECT_NEAR(ind.threshold, std::stod(r.out), 1e-10);

    // A precomputed first PC gives the same answer.
    UndertrainedOptions pre = opt;
    pre.first_pc = ind.first_pc;
    const UndertrainedIndicators again = undertrained_indicators(src, valid, reference, pre);
    for (std::int64_t i = 0; i < V; ++i) {
        if (!valid[i]) continue;
        EXPECT_NEAR(again.indicator[i], ind.indicator[i], 1e-14);
    }
}

TEST(UndertrainedIndicators, AutomaticReferenceFindsAClumpAtTheCentroid) {
    // The heuristic's premise: untrained tokens sit together near the centre of the cloud
    // (here the shared offset), away from the origin once the first PC is removed.
    const std::int64_t V = 4000, d = 32;
    const std::uint64_t seed = test::fresh_seed();
    std::mt19937_64 rng(seed);
    std::set<std::int64_t> near;
    for (std::int64_t i = 0; i < 30; ++i) near.insert(37 + 101 * i);
    std::vector<double> offset = unit_gaussian(d, rng);
    for (double& c : offset) c *= 3.0;
    const PlantedTable t = planted_table(V, d, near, offset, offset, rng);
    MemoryRowSource src(MatrixView<const float>(t.x.data(), V, d));

    const UndertrainedIndicators ind = undertrained_indicators(src, {}, {});
    EXPECT_TRUE(ind.reference_automatic);
    ASSERT_EQ(ind.reference_ids.size(), 20u);  // ceil(0.005 * 4000)
    for (std::int64_t id : ind.reference_ids) EXPECT_EQ(near.count(id), 1u) << "token " << id;
    EXPECT_EQ(lowest(ind.indicator, near.size()), near);

    const std::vector<std::int64_t> auto_ids =
        automatic_reference_ids(src, {}, ind.first_pc, std::nullopt, 0.005);
    EXPECT_EQ(auto_ids, ind.reference_ids);
    EXPECT_EQ(automatic_reference_ids(src, {}, ind.first_pc, std::nullopt, 1e-9).size(), 1u);
}

TEST(UndertrainedIndicators, RejectsBadReferenceSets) {
    const std::int64_t V = 50, d = 4;
    const std::vector<float> x = test::random_table(V, d, test::fresh_seed());
    MemoryRowSource src(MatrixView<const float>(x.data(), V, d));
    std::vector<std::uint8_t> valid(V, 1);
    valid[2] = valid[3] = 0;
    EXPECT_THROW(undertrained_indicators(src, valid, {2, 3}), InputError);
    EXPECT_THROW(undertrained_indicators(src, valid, {1, V}), UsageError);
    EXPECT_THROW(undertrained_indicators(src, valid, {-1}), UsageError);
    EXPECT_NO_THROW(undertrained_indicators(src, valid, {1, 2}));

    // A non-finite reference row poisons the reference mean: refused, not a table of NaNs.
    std::vector<float> y(x);
    y[5 * d + 1] = NAN;
    MemoryRowSource poisoned(MatrixView<const float>(y.data(), V, d));
    UndertrainedOptions opt;
    opt.first_pc = std::vector<double>{1.0, 0.0, 0.0, 0.0};
    EXPECT_THROW(undertrained_indicators(poisoned, {}, {5}, opt), InputError);
    const UndertrainedIndicators ok = undertrained_indicators(poisoned, {}, {6}, opt);
    EXPECT_TRUE(std::isnan(ok.indicator[5]));
    EXPECT_TRUE(std::isfinite(ok.threshold));
}

TEST(ReferenceTokens, RegexRangeAndList) {
    std::vector<std::string> tokens;
    for (int i = 0; i < 40; ++i) tokens.push_back("tok" + std::to_string(i));
    tokens[5] = "[unused0]";
    tokens[6] = "[unused1]";
    tokens[30] = "[unused17]";
    tokens[31] = "x[unused2]";  // not a whole-token match
    tokens[32] = "[unused]";    // no digits
    tokens[33] = "[UNUSED3]";   // case differs

    EXPECT_EQ(reference_ids_from_regex("^\\[unused\\d+\\]$", tokens),
              (std::vector<std::int64_t>{5, 6, 30}));
    EXPECT_EQ(reference_ids_from_regex("unused\\d", tokens),
              (std::vector<std::int64_t>{5, 6, 30, 31}));
    EXPECT_TRUE(reference_ids_from_regex("^nothing$", tokens).empty());
    EXPECT_THROW(reference_ids_from_regex("([", tokens), UsageError);

    EXPECT_EQ(reference_ids_from_range(5, 9, 40), (std::vector<std::int64_t>{5, 6, 7, 8}));
    EXPECT_TRUE(reference_ids_from_range(7, 7, 40).empty());
    EXPECT_THROW(reference_ids_from_range(30, 41, 40), UsageError);
    EXPECT_THROW(reference_ids_from_range(-1, 3, 40), UsageError);
    EXPECT_THROW(reference_ids_from_range(9, 5, 40), UsageError);

    EXPECT_EQ(reference_ids_from_list({9, 3, 9, 0}, 40), (std::vector<std::int64_t>{0, 3, 9}));
    EXPECT_THROW(reference_ids_from_list({3, 40}, 40), UsageError);
}

TEST(ReferenceTokens, RegexSelectionDrivesTheIndicator) {
    // End to end: the reference set comes from token strings.
    const std::int64_t V = 1000, d = 16;
    const std::uint64_t seed = test::fresh_seed();
    std::mt19937_64 rng(seed);
    std::vector<std::string> tokens;
    std::set<std::int64_t> near;
    for (std::int64_t i = 0; i < V; ++i) {
        const bool unused = i >= 990;
        tokens.push_back(unused ? "<unused" + std::to_string(i - 990) + ">"
                                : "w" + std::to_string(i));
        if (unused) near.insert(i);
    }
    std::vector<double> p = unit_gaussian(d, rng);
    for (double& c : p) c *= 4.0;
    const PlantedTable t = planted_table(V, d, near, p, std::vector<double>(d, 0.0), rng);
    MemoryRowSource src(MatrixView<const float>(t.x.data(), V, d));
    const std::vector<std::int64_t> ref = reference_ids_from_regex("^<unused\\d+>$", tokens);
    ASSERT_EQ(ref.size(), 10u);
    const UndertrainedIndicators ind = undertrained_indicators(src, {}, ref);
    EXPECT_EQ(lowest(ind.indicator, near.size()), near);
}

TEST(MaskedQuantile, MatchesNumpyLinearInterpolation) {
    std::vector<double> v;
    for (int i = 99; i >= 0; --i) v.push_back(i);
    EXPECT_DOUBLE_EQ(masked_quantile(v, {}, 0.02), 1.98);  // np.quantile(np.arange(100), 0.02)
    EXPECT_DOUBLE_EQ(masked_quantile(v, {}, 0.0), 0.0);
    EXPECT_DOUBLE_EQ(masked_quantile(v, {}, 1.0), 99.0);
    std::vector<std::uint8_t> mask(v.size(), 0);
    mask[0] = mask[1] = 1;  // values 99 and 98
    v.push_back(NAN);
    mask.push_back(1);
    EXPECT_DOUBLE_EQ(masked_quantile(v, mask, 0.25), 98.25);
    EXPECT_TRUE(std::isnan(masked_quantile(v, std::vector<std::uint8_t>(v.size(), 0), 0.5)));
}

}  // namespace
}  // namespace embgeom
