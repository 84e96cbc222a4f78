// Principal directions (streamed covariance, dsyevd, spectrum summaries), all-but-the-top,
// IsoScore and rogue dimensions. numpy (float64) is the reference for the covariance, the
// eigen-decomposition and IsoScore; brute force for pairwise cosines. The Backend path
// (GramAccumulator, symmetric_eigen) on the CPU backend must give the reference's bits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/openmp_threads.hpp"
#include "embgeom/backend.hpp"
#include "embgeom/errors.hpp"
#include "embgeom/row_source.hpp"
#include "geometry/all_but_the_top.hpp"
#include "geometry/isotropy.hpp"
#include "geometry/principal_directions.hpp"
#include "geometry/rogue_dimensions.hpp"
#include "geometry/undertrained_indicators.hpp"
#include "support/test_support.hpp"

namespace embgeom {
namespace {

using test::read_doubles;
using test::write_binary;

double max_abs(const std::vector<double>& v) {
    double m = 0.0;
    for (double x : v) m = std::max(m, std::fabs(x));
    return m;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
    EXPECT_EQ(a.size(), b.size());
    double m = 0.0;
    for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
        m = std::max(m, std::fabs(a[i] - b[i]));
    return m;
}

double dot(const double* a, const double* b, std::int64_t d) {
    double s = 0.0;
    for (std::int64_t j = 0; j < d; ++j) s += a[j] * b[j];
    return s;
}

std::vector<std::uint8_t> random_mask(std::int64_t V, double p_invalid, std::mt19937_64& rng) {
    std::bernoulli_distribution drop(p_invalid);
    std::vector<std::uint8_t> m(static_cast<std::size_t>(V));
    for (auto& x : m) x = drop(rng) ? 0 : 1;
    return m;
}

/// Random orthonormal rows [k, d] (Gram-Schmidt of Gaussian vectors).
std::vector<double> orthonormal_rows(std::int64_t k, std::int64_t d, std::mt19937_64& rng) {
    std::normal_distribution<double> g;
    std::vector<double> q(static_cast<std::size_t>(k * d));
    for (std::int64_t i = 0; i < k; ++i) {
        double* v = q.data() + i * d;
        for (std::int64_t j = 0; j < d; ++j) v[j] = g(rng);
        for (int pass = 0; pass < 2; ++pass)
            for (std::int64_t p = 0; p < i; ++p) {
                const double c = dot(v, q.data() + p * d, d);
                for (std::int64_t j = 0; j < d; ++j) v[j] -= c * q[p * d + j];
            }
        const double n = std::sqrt(dot(v, v, d));
        for (std::int64_t j = 0; j < d; ++j) v[j] /= n;
    }
    return q;
}

// ---- covariance and eigenvalues against numpy, for several d and block sizes -----------------

class CovarianceVsNumpy : public ::testing::TestWithParam<std::int64_t> {};

TEST_P(CovarianceVsNumpy, MatchesNumpyAndIsIndependentOfBlockSize) {
    const std::int64_t V = 503, d = GetParam();
    const std::uint64_t seed = test::fresh_seed();
    std::mt19937_64 rng(seed);
    // Correlated, offset columns so the covariance is not close to the identity.
    std::vector<float> x = test::random_table(V, d, seed ^ 0x5eedULL, 2.5f);
    const std::vector<double> mix = orthonormal_rows(d, d, rng);
    for (std::int64_t i = 0; i < V; ++i) {
        std::vector<double> row(static_cast<std::size_t>(d), 0.0);
        for (std::int64_t k = 0; k < d; ++k)
            for (std::int64_t j = 0; j < d; ++j)
                row[j] += x[i * d + k] * mix[k * d + j] * (1.0 + 0.3 * static_cast<double>(k));
        for (std::int64_t j = 0; j < d; ++j) x[i * d + j] = static_cast<float>(row[j] + 4.0);
    }
    const std::vector<std::uint8_t> valid = random_mask(V, 0.1, rng);

    test::TempDir dir;
    write_binary(dir.file("x.bin"), x);
    write_binary(dir.file("valid.bin"), valid);
    test::run_python(
        R"(
import sys, numpy as np
V, d, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
X = np.fromfile(path + "/x.bin", dtype=np.float32).reshape(V, d).astype(np.float64)
m = np.fromfile(path + "/valid.bin", dtype=np.uint8).astype(bool)
Xv = X[m]
C = np.atleast_2d(np.cov(Xv, rowvar=False, ddof=0))
w, U = np.linalg.eigh(C)
w, U = w[::-1], U[:, ::-1]
p = np.clip(w, 0, None) / np.clip(w, 0, None).sum()
nz = p[p > 0]
er = np.exp(-(nz * np.log(nz)).sum())
pr = np.clip(w, 0, None).sum() ** 2 / (np.clip(w, 0, None) ** 2).sum()
C.tofile(path + "/cov.bin")
Xv.mean(axis=0).tofile(path + "/mean.bin")
w.tofile(path + "/w.bin")
np.ascontiguousarray(U.T).tofile(path + "/u.bin")
np.array([er, pr, len(Xv)], dtype=np.float64).tofile(path + "/stats.bin")
)",
        std::to_string(V) + " " + std::to_string(d) + " " + test::shell_quote(dir.path()));
    const std::vector<double> cov_np = read_doubles(dir.file("cov.bin"));
    const std::vector<double> mean_np = read_doubles(dir.file("mean.bin"));
    const std::vector<double> w_np = read_doubles(dir.file("w.bin"));
    const std::vector<double> u_np = read_doubles(dir.file("u.bin"));
    const std::vector<double> stats_np = read_doubles(dir.file("stats.bin"));
    ASSERT_EQ(cov_np.size(), static_cast<std::size_t>(d * d));
    ASSERT_EQ(stats_np.size(), 3u);

    MemoryRowSource src(MatrixView<const float>(x.data(), V, d));
    std::vector<Covariance> covs;
    std::vector<PrincipalDirections> pds;
    for (std::int64_t block : {std::int64_t{1}, std::int64_t{7}, V}) {
        SCOPED_TRACE("block_rows " + std::to_string(block));
        CovarianceOptions opt;
        opt.block_rows = block;
        covs.push_back(streamed_covariance(src, valid, opt));
        const Covariance& c = covs.back();
        EXPECT_EQ(c.n, static_cast<std::int64_t>(stats_np[2]));
        const double scale = max_abs(cov_np);
        EXPECT_LE(max_abs_diff(c.matrix, cov_np), 1e-12 * scale);
        EXPECT_LE(max_abs_diff(c.mean, mean_np), 1e-12 * max_abs(mean_np));

        pds.push_back(principal_directions(c));
        const PrincipalDirections& pd = pds.back();
        const double lmax = w_np.front();
        EXPECT_LE(max_abs_diff(pd.eigenvalues, w_np), 1e-11 * lmax);
        EXPECT_NEAR(pd.effective_rank, stats_np[0], 1e-10 * stats_np[0]);
        EXPECT_NEAR(pd.participation_ratio, stats_np[1], 1e-10 * stats_np[1]);
        for (std::int64_t k = 0; k < d; ++k) {
            // Eigenvectors are defined up to sign, and only where the eigenvalue is isolated.
            const double gap = std::min(k > 0 ? w_np[k - 1] - w_np[k] : lmax,
                                        k + 1 < d ? w_np[k] - w_np[k + 1] : lmax);
            if (gap < 1e-3 * lmax) continue;
            const double* u = pd.eigenvectors.data() + k * d;
            EXPECT_NEAR(std::fabs(dot(u, u_np.data() + k * d, d)), 1.0, 1e-9) << "direction " << k;
            EXPECT_NEAR(dot(u, u, d), 1.0, 1e-12);
        }
        double ratio_sum = 0.0;
        for (double r : pd.explained_ratio) ratio_sum += r;
        EXPECT_NEAR(ratio_sum, 1.0, 1e-12);
        EXPECT_TRUE(std::is_sorted(pd.eigenvalues.rbegin(), pd.eigenvalues.rend()));
    }
    // Block size changes only the float64 summation grouping.
    for (std::size_t i = 1; i < covs.size(); ++i) {
        EXPECT_LE(max_abs_diff(covs[i].matrix, covs[0].matrix), 1e-12 * max_abs(covs[0].matrix));
        EXPECT_LE(max_abs_diff(pds[i].eigenvalues, pds[0].eigenvalues),
                  1e-12 * pds[0].eigenvalues[0]);
    }
    // A given (inexact) shift gives the same covariance and mean in one pass.
    CovarianceOptions shifted;
    shifted.shift = std::vector<double>(static_cast<std::size_t>(d), 3.0);
    const Covariance cs = streamed_covariance(src, valid, shifted);
    EXPECT_LE(max_abs_diff(cs.matrix, covs[0].matrix), 1e-12 * max_abs(covs[0].matrix));
    EXPECT_LE(max_abs_diff(cs.mean, covs[0].mean), 1e-12 * max_abs(covs[0].mean));
}

INSTANTIATE_TEST_SUITE_P(Dims, CovarianceVsNumpy, ::testing::Values(1, 3, 17, 64));

TEST(PrincipalDirections, MaskedRowsAreExcluded) {
    const std::int64_t V = 200, d = 5;
    const std::uint64_t seed = test::fresh_seed();
    std::vector<float> x = test::random_table(V, d, seed);
    std::vector<std::uint8_t> valid(V, 1);
    std::vector<float> kept;
    for (std::int64_t i = 0; i < V; ++i) {
        if (i % 3 == 0) {
            valid[i] = 0;
            for (std::int64_t j = 0; j < d; ++j) x[i * d + j] = j == 0 ? NAN : 1e6f;  // poison
        } else {
            kept.insert(kept.end(), x.begin() + i * d, x.begin() + (i + 1) * d);
        }
    }
    MemoryRowSource all(MatrixView<const float>(x.data(), V, d));
    const std::int64_t nk = static_cast<std::int64_t>(kept.size()) / d;
    MemoryRowSource only(MatrixView<const float>(kept.data(), nk, d));
    const Covariance a = streamed_covariance(all, valid), b = streamed_covariance(only, {});
    EXPECT_EQ(a.n, nk);
    EXPECT_LE(max_abs_diff(a.matrix, b.matrix), 1e-13 * max_abs(b.matrix));
    EXPECT_LE(max_abs_diff(a.mean, b.mean), 1e-13);

    // The same poison in a valid row is an input error, and so is an all-invalid mask.
    std::vector<std::uint8_t> all_valid(V, 1), none(V, 0);
    EXPECT_THROW(streamed_covariance(all, all_valid), InputError);
    EXPECT_THROW(streamed_covariance(all, none), InputError);
}

TEST(PrincipalDirections, RejectsDimensionTooLargeForMemory) {
    const std::int64_t d = kMaxPrincipalDim + 1;
    std::vector<float> row(static_cast<std::size_t>(d), 1.0f);
    MemoryRowSource src(MatrixView<const float>(row.data(), 1, d));
    try {
        streamed_covariance(src, {});
        FAIL() << "no exception";
    } catch (const ResourceError& e) {
        EXPECT_NE(std::string(e.what()).find("too large"), std::string::npos) << e.what();
    }
}

// ---- analytic cases: isotropic null, offsets, planted spikes ---------------------------------

TEST(PrincipalDirections, IsotropicGaussianStaysInsideMarchenkoPasturBulk) {
    const std::int64_t V = 4000, d = 32;
    const std::vector<float> x = test::random_table(V, d, test::fresh_seed());
    MemoryRowSource src(MatrixView<const float>(x.data(), V, d));
    const PrincipalDirections pd = principal_directions(src, {});
    const double g = 1.0 + std::sqrt(static_cast<double>(d) / V);
    EXPECT_NEAR(pd.mp_upper_edge, pd.total_variance / d * g * g, 1e-12);
    EXPECT_NEAR(pd.total_variance / d, 1.0, 0.05);
    // MP is asymptotic: the largest null eigenvalue fluctuates around the edge on the
    // Tracy-Widom scale, so only the count with the 4-scale margin must be 0; the bare count can
    // be 1 in a fair share of draws (2 rarely).
    EXPECT_EQ(pd.above_mp_edge_margin, 0)
        << "top " << pd.eigenvalues[0] << " edge " << pd.mp_upper_edge;
    EXPECT_LE(pd.above_mp_edge, 2);
    EXPECT_GT(pd.mp_edge_tw_scale, 0.0);
    EXPECT_LT(pd.mp_edge_tw_scale, 0.05 * pd.mp_upper_edge);
    EXPECT_GT(pd.effective_rank, 0.95 * d);
    EXPECT_LE(pd.effective_rank, d + 1e-9);
    EXPECT_GT(pd.participation_ratio, 0.95 * d);
    EXPECT_GT(isoscore(pd).score, 0.9);
}

TEST(PrincipalDirections, ConstantOffsetDoesNotChangeCovariance) {
    const std::int64_t V = 600, d = 12;
    std::vector<float> x = test::random_table(V, d, test::fresh_seed());
    // Multiples of 2^-10 in (-8, 8) plus integers below 64 are exact in float32, so the offset
    // table holds exactly the shifted values and only float64 rounding can differ.
    for (float& v : x) v = std::round(std::clamp(v, -7.9f, 7.9f) * 1024.0f) / 1024.0f;
    std::vector<float> y(x);
    for (std::int64_t i = 0; i < V; ++i)
        for (std::int64_t j = 0; j < d; ++j) y[i * d + j] += static_cast<float>(50 - 7 * j);
    MemoryRowSource sx(MatrixView<const float>(x.data(), V, d)),
        sy(MatrixView<const float>(y.data(), V, d));
    const Covariance cx = streamed_covariance(sx, {}), cy = streamed_covariance(sy, {});
    EXPECT_LE(max_abs_diff(cx.matrix, cy.matrix), 1e-12 * max_abs(cx.matrix));
    for (std::int64_t j = 0; j < d; ++j) EXPECT_NEAR(cy.mean[j] - cx.mean[j], 50.0 - 7 * j, 1e-12);
}

TEST(PrincipalDirections, PlantedRankThreeRisesAboveEdge) {
    const std::int64_t V = 4000, d = 32;
    const std::uint64_t seed = test::fresh_seed();
    std::mt19937_64 rng(seed);
    std::vector<float> x = test::random_table(V, d, seed ^ 0xabcULL);
    const std::vector<double> v = orthonormal_rows(3, d, rng);
    const double s[3] = {3.0, 2.5, 2.0};
    std::normal_distribution<double> g;
    for (std::int64_t i = 0; i < V; ++i)
        for (int k = 0; k < 3; ++k) {
            const double a = s[k] * g(rng);
            for (std::int64_t j = 0; j < d; ++j)
                x[i * d + j] += static_cast<float>(a * v[k * d + j]);
        }
    MemoryRowSource src(MatrixView<const float>(x.data(), V, d));
    const PrincipalDirections pd = principal_directions(src, {});
    EXPECT_EQ(pd.above_mp_edge, 3);
    EXPECT_EQ(pd.above_mp_edge_margin, 3);
    // The top three directions span the planted subspace.
    for (int k = 0; k < 3; ++k) {
        double in_span = 0.0;
        for (int p = 0; p < 3; ++p) {
            const double c = dot(pd.eigenvectors.data() + k * d, v.data() + p * d, d);
            in_span += c * c;
        }
        EXPECT_GT(in_span, 0.98) << "direction " << k;
    }
}

// ---- all-but-the-top ------------------------------------------------------------------------

TEST(AllButTheTop, RemovesExactlyTheMeanAndTopDirections) {
    const std::int64_t V = 400, d = 24, D = 3;
    const std::uint64_t seed = test::fresh_seed();
    std::mt19937_64 rng(seed);
    std::vector<float> x = test::random_table(V, d, seed ^ 0x77ULL, 1.5f);
    const std::vector<double> v = orthonormal_rows(D, d, rng);
    std::normal_distribution<double> g;
    for (std::int64_t i = 0; i < V; ++i)
        for (std::int64_t k = 0; k < D; ++k) {
            const double a = (6.0 - k) * g(rng);
            for (std::int64_t j = 0; j < d; ++j)
                x[i * d + j] += static_cast<float>(a * v[k * d + j]);
        }
    MemoryRowSource src(MatrixView<const float>(x.data(), V, d));
    const PrincipalDirections pd = principal_directions(src, {});
    PostProcessedRowSource post(src, pd, D);
    EXPECT_EQ(post.rows(), V);
    EXPECT_EQ(post.cols(), d);
    EXPECT_NE(post.describe().find("all-but-the-top"), std::string::npos);

    std::vector<float> out(static_cast<std::size_t>(V * d));
    for (std::int64_t first = 0; first < V; first += 7)
        post.read_rows(first, std::min<std::int64_t>(7, V - first), out.data() + first * d);

    std::vector<double> out_mean(static_cast<std::size_t>(d), 0.0);
    for (std::int64_t i = 0; i < V; ++i) {
        std::vector<double> c(static_cast<std::size_t>(d)), y(static_cast<std::size_t>(d));
        for (std::int64_t j = 0; j < d; ++j) {
            c[j] = x[i * d + j] - pd.mean[j];
            y[j] = out[i * d + j];
            out_mean[j] += y[j] / V;
        }
        const double cn = std::sqrt(dot(c.data(), c.data(), d));
        for (std::int64_t k = 0; k < d; ++k) {
            const double* u = pd.eigenvectors.data() + k * d;
            const double py = dot(u, y.data(), d), pc = dot(u, c.data(), d);
            if (k < D)
                EXPECT_NEAR(py, 0.0, 1e-6 * cn) << "row " << i << " direction " << k;
            else
                EXPECT_NEAR(py, pc, 1e-6 * cn) << "row " << i << " direction " << k;
        }
    }
    for (std::int64_t j = 0; j < d; ++j) EXPECT_NEAR(out_mean[j], 0.0, 1e-6);

    // D = 0 removes the mean only.
    PostProcessedRowSource centred(src, pd.mean, {}, 0);
    std::vector<float> row(static_cast<std::size_t>(d));
    centred.read_rows(5, 1, row.data());
    for (std::int64_t j = 0; j < d; ++j)
        EXPECT_FLOAT_EQ(row[j], static_cast<float>(x[5 * d + j] - pd.mean[j]));
}

// ---- IsoScore -------------------------------------------------------------------------------

TEST(IsoScore, MatchesThePublishedAlgorithmStepByStep) {
    const std::int64_t V = 300, d = 10;
    const std::uint64_t seed = test::fresh_seed();
    std::vector<float> x = test::random_table(V, d, seed, 0.7f);
    for (std::int64_t i = 0; i < V; ++i)
        for (std::int64_t j = 0; j < d; ++j) x[i * d + j] *= static_cast<float>(1.0 + j * j * 0.2);
    test::TempDir dir;
    write_binary(dir.file("x.bin"), x);
    // Rudman et al.'s reference steps (points as columns, sklearn-style PCA via SVD, np.cov).
    const auto r = test::run_python(
        R"(
import sys, numpy as np
V, d, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
X = np.fromfile(path, dtype=np.float32).reshape(V, d).astype(np.float64)
Xc = X - X.mean(axis=0)
_, _, Vt = np.linalg.svd(Xc, full_matrices=False)
pts = (Xc @ Vt.T).T
cov_diag = np.cov(pts)[np.diag_indices(d)]
nv = cov_diag * np.sqrt(d) / np.linalg.norm(cov_diag)
delta = np.linalg.norm(nv - np.ones(d)) / np.sqrt(2 * (d - np.sqrt(d)))
score = ((d - delta**2 * (d - np.sqrt(d)))**2 - d) / (d * (d - 1))
print(repr(delta), repr(score))
)",
        std::to_string(V) + " " + std::to_string(d) + " " + test::shell_quote(dir.file("x.bin")));
    std::istringstream in(r.out);
    double delta = 0.0, score = 0.0;
    in >> delta >> score;
    ASSERT_TRUE(in) << r.out;
    MemoryRowSource src(MatrixView<const float>(x.data(), V, d));
    const IsoScoreResult iso = isoscore(principal_directions(src, {}));
    EXPECT_NEAR(iso.isotropy_defect, delta, 1e-10);
    EXPECT_NEAR(iso.score, score, 1e-10);
    EXPECT_NEAR(iso.fraction_used, (iso.score * (d - 1) + 1) / d, 1e-12);
    EXPECT_GT(iso.score, 0.0);
    EXPECT_LT(iso.score, 1.0);
}

TEST(IsoScore, ExtremesAndDegenerateInputs) {
    // All the variance on one axis: defect 1, one dimension used, score 0.
    const IsoScoreResult one = isoscore(std::vector<double>{5.0, 0.0, 0.0, 0.0});
    EXPECT_NEAR(one.isotropy_defect, 1.0, 1e-14);
    EXPECT_NEAR(one.dims_used, 1.0, 1e-12);
    EXPECT_NEAR(one.score, 0.0, 1e-14);
    // Equal variances: score 1.
    EXPECT_NEAR(isoscore(std::vector<double>(7, 2.5)).score, 1.0, 1e-14);
    EXPECT_TRUE(std::isnan(isoscore(std::vector<double>{3.0}).score));
    EXPECT_TRUE(std::isnan(isoscore(std::vector<double>{0.0, 0.0}).score));

    // Points on a random line in R^16, streamed: close to 0.
    const std::int64_t V = 500, d = 16;
    const std::uint64_t seed = test::fresh_seed();
    std::mt19937_64 rng(seed);
    const std::vector<double> v = orthonormal_rows(1, d, rng);
    std::normal_distribution<double> g;
    std::vector<float> x(static_cast<std::size_t>(V * d));
    for (std::int64_t i = 0; i < V; ++i) {
        const double a = 1.0 + 3.0 * g(rng);
        for (std::int64_t j = 0; j < d; ++j) x[i * d + j] = static_cast<float>(a * v[j]);
    }
    MemoryRowSource src(MatrixView<const float>(x.data(), V, d));
    EXPECT_NEAR(isoscore(principal_directions(src, {})).score, 0.0, 1e-6);
}

// ---- rogue dimensions -----------------------------------------------------------------------

TEST(RogueDimensions, ContributionsSumToBruteForceMeanCosine) {
    const std::int64_t V = 300, d = 16, rogue = 5;
    const std::uint64_t seed = test::fresh_seed();
    std::mt19937_64 rng(seed);
    std::vector<float> x = test::random_table(V, d, seed, 0.2f);
    for (std::int64_t i = 0; i < V; ++i) x[i * d + rogue] += 25.0f;
    std::vector<std::uint8_t> valid = random_mask(V, 0.1, rng);
    for (std::int64_t j = 0; j < d; ++j) x[7 * d + j] = 0.0f;  // a zero row, skipped
    valid[7] = 1;
    x[11 * d + 3] = NAN;  // masked: never read into the sums
    valid[11] = 0;

    std::vector<std::vector<double>> unit;
    for (std::int64_t i = 0; i < V; ++i) {
        if (!valid[i] || i == 7) continue;
        std::vector<double> u(x.begin() + i * d, x.begin() + (i + 1) * d);
        const double n = std::sqrt(dot(u.data(), u.data(), d));
        for (double& c : u) c /= n;
        unit.push_back(u);
    }
    const std::int64_t n = static_cast<std::int64_t>(unit.size());
    std::vector<double> cc(static_cast<std::size_t>(d), 0.0);
    double mean_cos = 0.0;
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t k = 0; k < n; ++k) {
            if (i == k) continue;
            mean_cos += dot(unit[i].data(), unit[k].data(), d);
            for (std::int64_t j = 0; j < d; ++j) cc[j] += unit[i][j] * unit[k][j];
        }
    const double pairs = static_cast<double>(n) * (n - 1);
    mean_cos /= pairs;
    for (double& c : cc) c /= pairs;

    MemoryRowSource src(MatrixView<const float>(x.data(), V, d));
    for (std::int64_t block : {std::int64_t{0}, std::int64_t{1}, std::int64_t{13}}) {
        const RogueDimensions rd = rogue_dimensions(src, valid, 3, block);
        EXPECT_EQ(rd.n, n);
        EXPECT_EQ(rd.zero_norm_rows, 1);
        EXPECT_NEAR(rd.mean_cosine, mean_cos, 1e-12);
        double sum = 0.0;
        for (std::int64_t j = 0; j < d; ++j) {
            EXPECT_NEAR(rd.contribution[j], cc[j], 1e-12) << "dim " << j;
            sum += rd.contribution[j];
        }
        EXPECT_NEAR(sum, rd.mean_cosine, 1e-14);
        ASSERT_EQ(rd.top.size(), 3u);
        EXPECT_EQ(rd.top[0].dim, rogue);
        EXPECT_GT(rd.top[0].share, 0.9);
        EXPECT_NEAR(rd.top[0].share, rd.top[0].contribution / rd.mean_cosine, 1e-15);
        EXPECT_GE(rd.top[0].contribution, rd.top[1].contribution);
        EXPECT_GE(rd.top[1].contribution, rd.top[2].contribution);
    }
}

// A table of rows and their negatives has mean cosine -1/(n-1), inside the isotropic noise for
// small d: the shares (a ratio of noise to noise there) are NaN; the contributions are not.
TEST(RogueDimensions, ShareIsUndefinedWhenTheMeanCosineIsNoise) {
    const std::int64_t half = 300, d = 4;
    std::vector<float> x = test::random_table(half, d, test::fresh_seed());
    for (std::int64_t i = 0; i < half * d; ++i) x.push_back(-x[static_cast<std::size_t>(i)]);
    MemoryRowSource src(MatrixView<const float>(x.data(), 2 * half, d));
    const RogueDimensions rd = rogue_dimensions(src, {}, 2);
    EXPECT_NEAR(rd.mean_cosine, -1.0 / (2 * half - 1), 1e-12);
    ASSERT_EQ(rd.top.size(), 2u);
    EXPECT_TRUE(std::isnan(rd.top[0].share));
    EXPECT_TRUE(std::isfinite(rd.top[0].contribution));
}

// ---- the Backend path on the CPU backend --------------------------------------------------

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(),
                      [](double x, double y) { return std::memcmp(&x, &y, sizeof(double)) == 0; });
}

/// Offset, correlated columns; invalid rows (about 1 in 9) hold a NaN.
std::vector<float> offset_table(std::int64_t V, std::int64_t d, std::uint64_t seed,
                                std::vector<std::uint8_t>& valid) {
    std::vector<float> x = test::random_table(V, d, seed, 0.0f);
    std::mt19937_64 rng(seed ^ 0xb0b0ULL);
    valid = random_mask(V, 0.11, rng);
    for (std::int64_t i = 0; i < V; ++i) {
        for (std::int64_t j = 0; j < d; ++j)
            x[i * d + j] = 300.0f + static_cast<float>(j % 7) +
                           (1.0f + 0.2f * static_cast<float>(j % 5)) * x[i * d + j] +
                           (j > 0 ? 0.5f * x[i * d + j - 1] : 0.0f);
        if (!valid[i]) x[i * d + (i % d)] = NAN;
    }
    return x;
}

TEST(PrincipalDirectionsBackend, CpuBackendGivesTheReferenceBits) {
    const std::uint64_t seed = test::fresh_seed();
    const auto backend = make_cpu_backend(2);
    for (std::int64_t d : {std::int64_t{1}, std::int64_t{5}, std::int64_t{67}}) {
        const std::int64_t V = 1001;
        std::vector<std::uint8_t> valid;
        const std::vector<float> x = offset_table(V, d, seed + d, valid);
        MemoryRowSource src(MatrixView<const float>(x.data(), V, d));
        for (std::int64_t block : {std::int64_t{0}, std::int64_t{1}, std::int64_t{13}, V}) {
            for (bool shifted : {false, true}) {
                SCOPED_TRACE("d " + std::to_string(d) + " block_rows " + std::to_string(block) +
                             (shifted ? " shifted" : ""));
                CovarianceOptions opt;
                opt.block_rows = block;
                if (shifted) opt.shift = std::vector<double>(static_cast<std::size_t>(d), 301.0);
                const Covariance ref = streamed_covariance(src, valid, opt);
                const Covariance got = streamed_covariance(*backend, src, valid, opt);
                EXPECT_EQ(got.n, ref.n);
                EXPECT_TRUE(same_bits(got.matrix, ref.matrix));
                EXPECT_TRUE(same_bits(got.mean, ref.mean));
                const PrincipalDirections pref = principal_directions(ref);
                const PrincipalDirections pgot = principal_directions(*backend, got);
                EXPECT_TRUE(same_bits(pgot.eigenvalues, pref.eigenvalues));
                EXPECT_TRUE(same_bits(pgot.eigenvectors, pref.eigenvectors));
                EXPECT_TRUE(same_bits(pgot.explained_ratio, pref.explained_ratio));
                EXPECT_EQ(pgot.above_mp_edge, pref.above_mp_edge);
                const PrincipalDirections whole = principal_directions(*backend, src, valid, opt);
                EXPECT_TRUE(same_bits(whole.eigenvectors, pref.eigenvectors));
                EXPECT_TRUE(same_bits(whole.mean, pref.mean));
            }
        }
    }
    // The same errors as the reference.
    const std::int64_t V = 50, d = 4;
    std::vector<std::uint8_t> valid;
    const std::vector<float> x = offset_table(V, d, seed, valid);
    MemoryRowSource src(MatrixView<const float>(x.data(), V, d));
    EXPECT_THROW(streamed_covariance(*backend, src, std::vector<std::uint8_t>(V, 1)), InputError);
    EXPECT_THROW(streamed_covariance(*backend, src, std::vector<std::uint8_t>(V, 0)), InputError);
}

TEST(PrincipalDirectionsBackend, UndertrainedFirstPcOnTheBackendGivesTheReferenceBits) {
    const std::int64_t V = 400, d = 9;
    std::vector<std::uint8_t> valid;
    const std::vector<float> x = offset_table(V, d, test::fresh_seed(), valid);
    MemoryRowSource src(MatrixView<const float>(x.data(), V, d));
    const auto backend = make_cpu_backend(2);
    const std::vector<std::int64_t> reference = {3, 4, 5, 6, 7, 8};
    const UndertrainedIndicators a = undertrained_indicators(src, valid, reference);
    const UndertrainedIndicators b = undertrained_indicators(*backend, src, valid, reference);
    EXPECT_TRUE(same_bits(a.first_pc, b.first_pc));
    EXPECT_TRUE(same_bits(a.indicator, b.indicator));
    EXPECT_EQ(a.candidates, b.candidates);
}

TEST(GramAccumulator, CpuSumsMatchFloat64ReferenceForAnyBlockSplit) {
    const std::uint64_t seed = test::fresh_seed();
    const auto backend = make_cpu_backend(2);
    // 300 columns: five panels of the accumulator, the last one short.
    for (std::int64_t d : {std::int64_t{1}, std::int64_t{3}, std::int64_t{40}, std::int64_t{300}}) {
        const std::int64_t V = 777, ld = d + 3;
        std::vector<std::uint8_t> valid;
        const std::vector<float> dense = offset_table(V, d, seed + d, valid);
        // Padded rows (leading dimension > d); the padding is poison the accumulator must skip.
        std::vector<float> x(static_cast<std::size_t>(V * ld), NAN);
        for (std::int64_t i = 0; i < V; ++i)
            std::copy_n(dense.begin() + i * d, d, x.begin() + i * ld);
        const MatrixView<const float> table(x.data(), V, d, ld);
        std::vector<double> shift(static_cast<std::size_t>(d));
        for (std::int64_t j = 0; j < d; ++j) shift[j] = 300.0 + static_cast<double>(j % 7) + 0.25;

        // Reference: t in row order (the documented bits), S in long double.
        std::vector<double> t_ref(static_cast<std::size_t>(d), 0.0);
        std::vector<long double> S_ref(static_cast<std::size_t>(d * d), 0.0L);
        std::int64_t n_ref = 0;
        std::vector<double> y(static_cast<std::size_t>(d));
        for (std::int64_t i = 0; i < V; ++i) {
            if (!valid[i]) continue;
            ++n_ref;
            for (std::int64_t j = 0; j < d; ++j) {
                y[j] = static_cast<double>(table.row(i)[j]) - shift[j];
                t_ref[j] += y[j];
            }
            for (std::int64_t a = 0; a < d; ++a)
                for (std::int64_t b = 0; b < d; ++b)
                    S_ref[a * d + b] += static_cast<long double>(y[a]) * y[b];
        }

        std::vector<GramSums> runs;
        for (std::int64_t block : {std::int64_t{1}, std::int64_t{7}, std::int64_t{100}, V}) {
            SCOPED_TRACE("d " + std::to_string(d) + " block " + std::to_string(block));
            auto acc = backend->gram_accumulator(d, shift);
            acc->add(table.slice_rows(0, 0), valid.data());  // an empty block adds nothing
            for (std::int64_t first = 0; first < V; first += block) {
                const std::int64_t count = std::min(block, V - first);
                acc->add(table.slice_rows(first, count), valid.data() + first);
            }
            runs.push_back(acc->finish());
            const GramSums& g = runs.back();
            EXPECT_EQ(g.dims, d);
            EXPECT_EQ(g.n, n_ref);
            ASSERT_EQ(g.gram.size(), static_cast<std::size_t>(d * d));
            EXPECT_TRUE(same_bits(g.column_sums, t_ref)) << "t must be the row-order sum";
            double worst = 0.0;
            for (std::int64_t a = 0; a < d; ++a)
                for (std::int64_t b = 0; b < d; ++b) {
                    EXPECT_EQ(g.gram[a * d + b], g.gram[b * d + a]) << "symmetric";
                    const double scale = std::sqrt(static_cast<double>(S_ref[a * d + a]) *
                                                   static_cast<double>(S_ref[b * d + b]));
                    worst = std::max(worst, std::fabs(g.gram[a * d + b] -
                                                      static_cast<double>(S_ref[a * d + b])) /
                                                scale);
                }
            EXPECT_LE(worst, 1e-12) << "S relative to sqrt(S_aa S_bb)";
        }
        for (std::size_t r = 1; r < runs.size(); ++r)
            EXPECT_LE(max_abs_diff(runs[r].gram, runs[0].gram), 1e-12 * max_abs(runs[0].gram));
    }
}

// OpenBLAS's OpenMP build sizes each call by the calling thread's OpenMP setting, and a threaded
// call splits its sums by the thread count. The results must not move with --threads nor with the
// OpenMP setting of the thread that calls (OMP_NUM_THREADS, a one-core cpuset, an MPI rank bound
// to a core): the same bits for every combination.
TEST(GramAccumulator, CpuBitsAreTheSameForAnyThreadCountAndCallersOpenMpSetting) {
    const std::uint64_t seed = test::fresh_seed();
    for (std::int64_t d : {std::int64_t{40}, std::int64_t{300}}) {
        const std::int64_t V = 900;
        std::vector<std::uint8_t> valid;
        const std::vector<float> x = offset_table(V, d, seed + d, valid);
        const MatrixView<const float> table(x.data(), V, d, d);
        const std::vector<double> shift(static_cast<std::size_t>(d), 1.5);
        std::vector<GramSums> runs;
        for (int threads : {1, 2, 3})
            for (int callers : {1, 2}) {
                OpenMpThreads callers_setting(callers);  // the calling thread's OpenMP count
                auto acc = make_cpu_backend(threads)->gram_accumulator(d, shift);
                for (std::int64_t first = 0; first < V; first += 256)
                    acc->add(table.slice_rows(first, std::min<std::int64_t>(256, V - first)),
                             valid.data() + first);
                runs.push_back(acc->finish());
                EXPECT_TRUE(same_bits(runs.back().gram, runs.front().gram))
                    << "d " << d << ", " << threads << " threads, caller's OpenMP " << callers;
            }
    }
}

TEST(SymmetricEigen, CpuBitsAreTheSameForAnyThreadCountAndCallersOpenMpSetting) {
    std::mt19937_64 rng(test::fresh_seed());
    std::normal_distribution<double> g;
    for (std::int64_t d : {std::int64_t{96}, std::int64_t{300}}) {
        std::vector<double> A(static_cast<std::size_t>(d * d));
        for (std::int64_t i = 0; i < d; ++i)
            for (std::int64_t j = 0; j <= i; ++j) A[i * d + j] = A[j * d + i] = g(rng);
        std::vector<double> first_v, first_w;
        for (int threads : {1, 2, 3})
            for (int callers : {1, 2}) {
                OpenMpThreads callers_setting(callers);  // the calling thread's OpenMP count
                std::vector<double> v = A, w;
                make_cpu_backend(threads)->symmetric_eigen(d, v, w);
                if (first_v.empty()) {
                    first_v = v;
                    first_w = w;
                }
                EXPECT_TRUE(same_bits(w, first_w) && same_bits(v, first_v))
                    << "d " << d << ", " << threads << " threads, caller's OpenMP " << callers;
            }
    }
}

TEST(AllButTheTop, BitsAreTheSameForAnyThreadCountAndCallersOpenMpSetting) {
    std::mt19937_64 rng(test::fresh_seed());
    std::normal_distribution<double> g;
    const std::int64_t V = 1500, d = 300, D = 5;  // several row chunks of the transform
    std::vector<float> x(static_cast<std::size_t>(V * d));
    for (float& v : x) v = static_cast<float>(g(rng));
    std::vector<double> mean(static_cast<std::size_t>(d)), dirs(static_cast<std::size_t>(D * d));
    for (double& v : mean) v = g(rng);
    for (double& v : dirs) v = g(rng) / std::sqrt(static_cast<double>(d));
    std::vector<float> first;
    for (int threads : {1, 2, 3})
        for (int callers : {1, 2}) {
            OpenMpThreads callers_setting(callers);  // the calling thread's OpenMP count
            std::vector<float> y = x;
            remove_mean_and_top_directions(MatrixView<float>(y.data(), V, d), mean, dirs, D,
                                           threads);
            if (first.empty()) first = y;
            EXPECT_EQ(std::memcmp(y.data(), first.data(), y.size() * sizeof(float)), 0)
                << threads << " threads, caller's OpenMP " << callers;
        }
}

TEST(SymmetricEigen, CpuBackendGivesAscendingOrthonormalEigenpairs) {
    const std::uint64_t seed = test::fresh_seed();
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> g;
    const auto backend = make_cpu_backend(2);
    for (std::int64_t d : {std::int64_t{1}, std::int64_t{2}, std::int64_t{17}, std::int64_t{120}}) {
        SCOPED_TRACE("d " + std::to_string(d));
        std::vector<double> A(static_cast<std::size_t>(d * d));
        for (std::int64_t i = 0; i < d; ++i)
            for (std::int64_t j = 0; j <= i; ++j) A[i * d + j] = A[j * d + i] = g(rng);
        std::vector<double> v = A, w;
        backend->symmetric_eigen(d, v, w);
        ASSERT_EQ(w.size(), static_cast<std::size_t>(d));
        ASSERT_EQ(v.size(), static_cast<std::size_t>(d * d));
        EXPECT_TRUE(std::is_sorted(w.begin(), w.end()));
        const double scale = std::max(std::fabs(w.front()), std::fabs(w.back()));
        for (std::int64_t k = 0; k < d; ++k) {
            const double* u = v.data() + k * d;
            EXPECT_NEAR(dot(u, u, d), 1.0, 1e-12);
            if (k > 0) {
                EXPECT_NEAR(dot(u, v.data() + (k - 1) * d, d), 0.0, 1e-12);
            }
            double r2 = 0.0;
            for (std::int64_t i = 0; i < d; ++i) {
                const double r = dot(A.data() + i * d, u, d) - w[k] * u[i];
                r2 += r * r;
            }
            EXPECT_LE(std::sqrt(r2), 1e-12 * scale) << "residual of eigenpair " << k;
        }
        // The same bits as the CPU reference inside principal_directions.
        Covariance cov;
        cov.dims = d;
        cov.n = 10;
        cov.mean.assign(static_cast<std::size_t>(d), 0.0);
        cov.matrix = A;
        const PrincipalDirections pd = principal_directions(cov);
        EXPECT_TRUE(same_bits(pd.eigenvalues, std::vector<double>(w.rbegin(), w.rend())));
    }
}

}  // namespace
}  // namespace embgeom
