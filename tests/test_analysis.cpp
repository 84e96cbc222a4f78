// Distribution summaries, robust z-scores, outlier ranking, null-model figures and hubness,
// against float64 references (numpy for quantiles and moments) on fresh random inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

#include "analysis/hubness.hpp"
#include "analysis/null_model.hpp"
#include "analysis/outlier_ranking.hpp"
#include "analysis/summary_stats.hpp"
#include "support/test_support.hpp"

namespace embgeom {
namespace {

TEST(SummaryStats, MatchesNumpy) {
    const std::uint64_t seed = test::fresh_seed();
    std::mt19937_64 rng(seed);
    std::lognormal_distribution<double> dist(0.0, 0.7);
    for (int n : {1, 2, 5, 1001}) {
        std::vector<float> v(static_cast<std::size_t>(n));
        for (float& x : v) x = static_cast<float>(dist(rng));
        std::vector<std::uint8_t> mask(v.size(), 1);
        if (n > 3) {  // masked and non-finite values must be ignored
            mask[1] = 0;
            v[2] = std::nanf("");
        }
        const Summary s = summarize(v, mask);
        test::TempDir dir;
        std::ostringstream text;
        text.precision(9);
        for (std::size_t i = 0; i < v.size(); ++i)
            if (mask[i] && std::isfinite(v[i])) text << v[i] << "\n";
        test::write_text_file(dir.file("v.txt"), text.str());
        const auto r = test::run_python(R"(
import sys, numpy as np
v = np.atleast_1d(np.loadtxt(sys.argv[1], dtype=np.float32).astype(np.float64))
q = np.quantile(v, [0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999])
c = v - v.mean()
m2, m3 = (c**2).mean(), (c**3).mean()
skew = m3 / m2**1.5 if m2 > 0 else 0.0
med = np.median(v)
print(len(v), repr(v.mean()), repr(v.std()), repr(v.min()), repr(v.max()), *map(repr, q), repr(med), repr(np.median(np.abs(v - med))), repr(skew))
)", test::shell_quote(dir.file("v.txt")));
        std::istringstream in(r.out);
        double count, mean, stdev, mn, mx, med, mad, skew;
        in >> count >> mean >> stdev >> mn >> mx;
        std::array<double, 9> q{};
        for (double& x : q) in >> x;
        in >> med >> mad >> skew;
        ASSERT_TRUE(in) << r.out;
        EXPECT_EQ(s.count, static_cast<std::int64_t>(count));
        EXPECT_NEAR(s.mean, mean, 1e-12 * std::fabs(mean));
        EXPECT_NEAR(s.std, stdev, 1e-9 * stdev + 1e-15);
        EXPECT_EQ(s.min, mn);
        EXPECT_EQ(s.max, mx);
        for (std::size_t i = 0; i < q.size(); ++i) EXPECT_NEAR(s.quantiles[i], q[i], 1e-12 * q[i]) << i;
        EXPECT_NEAR(s.median, med, 1e-12 * med);
        EXPECT_NEAR(s.mad, mad, 1e-12 * mad + 1e-15);
        EXPECT_NEAR(s.skewness, skew, 1e-9 * std::fabs(skew) + 1e-12);
    }
}

// The quantiles come from selecting the ranks they read, not from a sort: the values must be the
// sorted ones exactly, ties included.
TEST(SummaryStats, QuantilesAreTheSortedOrderStatisticsBitForBit) {
    const std::uint64_t seed = test::fresh_seed();
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> step(-40, 40);
    std::normal_distribution<double> g;
    for (const std::size_t n : {1u, 2u, 3u, 7u, 100u, 1000u, 12345u}) {
        for (const bool ties : {false, true}) {
            std::vector<double> v(n);
            for (double& x : v) x = ties ? step(rng) / 8.0 : g(rng);
            const Summary s = summarize(v);
            std::vector<double> sorted = v;
            std::sort(sorted.begin(), sorted.end());
            const auto quantile = [&](double q) {
                const double pos = q * static_cast<double>(n - 1);
                const auto lo = static_cast<std::size_t>(std::floor(pos));
                const std::size_t hi = std::min(lo + 1, n - 1);
                return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
            };
            SCOPED_TRACE("seed " + std::to_string(seed) + ", n " + std::to_string(n));
            EXPECT_EQ(s.min, sorted.front());
            EXPECT_EQ(s.max, sorted.back());
            EXPECT_EQ(s.median, quantile(0.5));
            for (std::size_t i = 0; i < kQuantileLevels.size(); ++i)
                EXPECT_EQ(s.quantiles[i], quantile(kQuantileLevels[i])) << kQuantileLevels[i];
        }
    }
}

TEST(SummaryStats, EmptyGivesNaN) {
    const Summary s = summarize(std::vector<float>{std::nanf("")});
    EXPECT_EQ(s.count, 0);
    EXPECT_TRUE(std::isnan(s.mean));
    EXPECT_TRUE(std::isnan(s.quantiles[4]));
}

TEST(RobustZscore, UsesMedianAndScaledMad) {
    const Summary s = summarize(std::vector<double>{1, 2, 3, 4, 100});
    EXPECT_DOUBLE_EQ(s.median, 3.0);
    EXPECT_DOUBLE_EQ(s.mad, 1.0);
    EXPECT_DOUBLE_EQ(robust_zscore(100.0, s), 97.0 / 1.4826);
    const Summary flat = summarize(std::vector<double>{2, 2, 2});
    EXPECT_EQ(robust_zscore(2.0, flat), 0.0);
    EXPECT_TRUE(std::isinf(robust_zscore(3.0, flat)));
}

TEST(OutlierRanking, OrdersByScoreThenIdAndSkipsMaskedAndNaN) {
    const std::vector<float> score = {5, 1, 3, 1, std::nanf(""), 0, 9};
    const std::vector<std::uint8_t> mask = {1, 1, 1, 1, 1, 0, 1};
    const auto small = rank_tokens(score, mask, 3, Tail::kSmallest);
    ASSERT_EQ(small.size(), 3u);
    EXPECT_EQ(small[0].token_id, 1);
    EXPECT_EQ(small[1].token_id, 3);
    EXPECT_EQ(small[2].token_id, 2);
    const auto large = rank_tokens(score, mask, 100, Tail::kLargest);
    ASSERT_EQ(large.size(), 5u);
    EXPECT_EQ(large[0].token_id, 6);
    EXPECT_EQ(large[4].token_id, 3);
}

TEST(NullModel, MatchesMonteCarloOfIsotropicGaussian) {
    std::mt19937_64 rng(test::fresh_seed());
    std::normal_distribution<double> n01;
    for (int d : {1, 3, 64, 768}) {
        const IsotropicGaussianExpectation e = isotropic_gaussian_expectation(1000, d);
        const int samples = 20000;
        double s = 0, s2 = 0;
        for (int i = 0; i < samples; ++i) {
            double q = 0;
            for (int c = 0; c < d; ++c) {
                const double x = n01(rng);
                q += x * x;
            }
            const double r = std::sqrt(q);
            s += r;
            s2 += r * r;
        }
        const double mean = s / samples, width = std::sqrt(s2 / samples - mean * mean) / mean;
        EXPECT_NEAR(e.norm_relative_width, width, 0.03 * width) << d;
        if (d >= 64) {
            EXPECT_NEAR(e.norm_relative_width, 1.0 / std::sqrt(2.0 * d), 0.02 / std::sqrt(d));
        }
        EXPECT_DOUBLE_EQ(e.pair_cosine_std, 1.0 / std::sqrt(d));
        EXPECT_DOUBLE_EQ(e.centroid_norm_over_mean_norm, 1.0 / std::sqrt(1000.0));
    }
}

TEST(Hubness, FiguresFromKOccurrence) {
    // 4 valid tokens, k = 1: token 0 is everyone's neighbour; token 3 is masked out.
    const std::vector<std::int32_t> occ = {3, 1, 0, 7};
    const std::vector<std::uint8_t> valid = {1, 1, 1, 0};
    const HubnessFigures h = hubness_figures(occ, valid, 1);
    EXPECT_EQ(h.antihubs, 1);
    EXPECT_EQ(h.hubs, 1);  // N_k >= 2k = 2
    // mean 4/3; sum |N - mean| = 5/3 + 1/3 + 4/3 = 10/3; RH = (10/3) / (2 * 4)
    EXPECT_NEAR(h.robin_hood_index, (10.0 / 3.0) / 8.0, 1e-12);
    EXPECT_GT(h.skewness, 0.0);
}

}  // namespace
}  // namespace embgeom

namespace embgeom {
namespace {

TEST(Hubness, GiniAndShares) {
    const std::vector<std::int32_t> occ = {0, 0, 0, 4};
    const HubnessFigures h = hubness_figures(occ, {}, 1);
    // sorted 0 0 0 4: sum (2i - n - 1) x_i = (8 - 5) * 4 = 12; / (n * total) = 12 / 16
    EXPECT_DOUBLE_EQ(h.gini, 0.75);
    EXPECT_DOUBLE_EQ(h.antihub_share, 0.75);
    EXPECT_DOUBLE_EQ(h.hub_share, 0.25);
    EXPECT_DOUBLE_EQ(hubness_figures({2, 2, 2}, {}, 1).gini, 0.0);
}

TEST(TwoNN, RecoversTheDimensionOfUniformPointsOnASphere) {
    // Points uniform on the unit sphere S^{m-1} in R^m have intrinsic dimension m - 1; brute-force
    // cosine neighbours feed the estimator exactly as the engine's lists do.
    std::mt19937_64 rng(test::fresh_seed());
    std::normal_distribution<double> n01;
    for (int m : {3, 6}) {
        const int V = 3000, k = 2;
        std::vector<double> x(static_cast<std::size_t>(V) * m);
        for (int i = 0; i < V; ++i) {
            double s = 0;
            for (int c = 0; c < m; ++c) s += (x[i * m + c] = n01(rng)) * x[i * m + c];
            for (int c = 0; c < m; ++c) x[i * m + c] /= std::sqrt(s);
        }
        std::vector<float> sims(static_cast<std::size_t>(V) * k);
        for (int i = 0; i < V; ++i) {
            double b1 = -2, b2 = -2;
            for (int j = 0; j < V; ++j) {
                if (j == i) continue;
                double c = 0;
                for (int q = 0; q < m; ++q) c += x[i * m + q] * x[j * m + q];
                if (c > b1) { b2 = b1; b1 = c; } else if (c > b2) { b2 = c; }
            }
            sims[i * k] = static_cast<float>(b1);
            sims[i * k + 1] = static_cast<float>(b2);
        }
        EXPECT_NEAR(twonn_dimension(sims, k, {}), m - 1, 0.15 * (m - 1)) << m;
    }
    EXPECT_TRUE(std::isnan(twonn_dimension({0.5f}, 1, {})));
}

// The MAD comes from selection, not a second sort: it must equal numpy's linear median of the
// sorted absolute deviations exactly, for odd and even sizes, ties and tiny arrays.
TEST(Analysis, MadBySelectionEqualsTheSortedDefinition) {
    std::mt19937_64 rng(std::random_device{}());
    for (const std::size_t n : {1u, 2u, 3u, 4u, 7u, 10u, 1001u, 5000u}) {
        for (const bool ties : {false, true}) {
            std::vector<double> v(n);
            std::normal_distribution<double> g;
            for (double& x : v) x = ties ? std::round(3.0 * g(rng)) : g(rng);
            const Summary s = summarize(v, {});
            std::vector<double> dev(v);
            for (double& x : dev) x = std::fabs(x - s.median);
            std::sort(dev.begin(), dev.end());
            const double pos = 0.5 * static_cast<double>(n - 1);
            const auto lo = static_cast<std::size_t>(std::floor(pos));
            const std::size_t hi = std::min(lo + 1, n - 1);
            const double want = dev[lo] + (dev[hi] - dev[lo]) * (pos - static_cast<double>(lo));
            EXPECT_EQ(s.mad, want) << "n " << n << (ties ? " with ties" : "");
        }
    }
}

// The same fit from float64 neighbour distances, written out from the definition (scikit-dimension
// TwoNN): sort mu, keep the smallest 90%, slope through the origin of -log(1 - i/N) on log mu.
double twonn_reference(std::vector<double> mu) {
    std::sort(mu.begin(), mu.end());
    const double N = static_cast<double>(mu.size());
    double xy = 0, xx = 0;
    for (std::size_t i = 0; i < static_cast<std::size_t>(N * 0.9); ++i) {
        xy += std::log(mu[i]) * -std::log(1.0 - static_cast<double>(i) / N);
        xx += std::log(mu[i]) * std::log(mu[i]);
    }
    return xy / xx;
}

TEST(Analysis, TwoNNMatchesTheDefinitionAndIgnoresNearDuplicates) {
    std::mt19937_64 rng(std::random_device{}());
    std::uniform_real_distribution<double> u(0.0, 1.0);
    const int V = 4000, k = 3;
    std::vector<float> sims(static_cast<std::size_t>(V) * k);
    std::vector<double> mu(V);
    for (int i = 0; i < V; ++i) {
        // r1 in (0.2, 0.6), mu from a Pareto law with exponent 7 (a 7-dimensional cloud).
        const double r1 = 0.2 + 0.4 * u(rng), m = std::pow(1.0 - u(rng), -1.0 / 7.0);
        const double c1 = 1.0 - r1 * r1 / 2.0, c2 = 1.0 - (r1 * m) * (r1 * m) / 2.0;
        sims[i * k] = static_cast<float>(c1);
        sims[i * k + 1] = static_cast<float>(c2);
        sims[i * k + 2] = static_cast<float>(c2 - 0.01);
        // The reference sees the float32 cosines the function sees.
        mu[i] = std::sqrt(2.0 - 2.0 * sims[i * k + 1]) / std::sqrt(2.0 - 2.0 * sims[i * k]);
    }
    const double d = twonn_dimension(sims, k, {});
    EXPECT_NEAR(d, twonn_reference(mu), 1e-9 * twonn_reference(mu));
    EXPECT_NEAR(d, 7.0, 0.7);
    // 3% of tokens become near-duplicates, r1 ~ 3e-4 (1 - c1 one float32 ulp below 1, below what
    // two float32 GEMMs agree on): what their cosines are, to the ulp, does not matter (an MLE
    // sum of log mu moved by 1% here between two backends).
    std::vector<float> near1 = sims, near2 = sims;
    for (int i = 0; i < V; i += 33) {
        near1[i * k] = std::nextafter(1.0f, 0.0f);
        near2[i * k] = std::nextafter(near1[i * k], 0.0f);
    }
    EXPECT_EQ(twonn_dimension(near1, k, {}), twonn_dimension(near2, k, {}));
    // Exact duplicates (r1 = 0) are left out.
    std::vector<float> exact_dup = sims;
    std::vector<double> distinct;
    for (int i = 0; i < V; ++i) {
        if (i % 33 == 0) exact_dup[i * k] = 1.0f;
        else distinct.push_back(mu[i]);
    }
    EXPECT_NEAR(twonn_dimension(exact_dup, k, {}), twonn_reference(distinct), 1e-9 * d);
    std::vector<float> dup = near1;
    // Invalid tokens are left out.
    std::vector<std::uint8_t> valid(V, 1);
    for (int i = 0; i < V; i += 33) valid[i] = 0;
    std::vector<double> kept;
    for (int i = 0; i < V; ++i)
        if (valid[i]) kept.push_back(mu[i]);
    EXPECT_NEAR(twonn_dimension(dup, k, valid), twonn_reference(kept), 1e-9 * d);
}

}  // namespace
}  // namespace embgeom
