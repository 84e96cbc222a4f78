// Gaussian null models: Philox4x64-10 against numpy.random.Philox, the table as a pure function
// of (seed, row, col) (numpy reproduces it; block size, read order and thread count do not
// matter), Gaussian statistics of the values, and column_moments against numpy in float64.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "embgeom/errors.hpp"
#include "embgeom/row_source.hpp"
#include "support/test_support.hpp"
#include "synth/gaussian_row_source.hpp"

namespace embgeom {
namespace {

using test::read_doubles;
using test::write_binary;

using test::fresh_seed;
using test::run_python;
using test::TempDir;

std::vector<float> read_all(RowSource& src) {
    std::vector<float> out(static_cast<std::size_t>(src.rows() * src.cols()));
    src.read_rows(0, src.rows(), out.data());
    return out;
}

/// Reads the table in blocks of B rows, visiting the blocks in a shuffled order.
std::vector<float> read_shuffled_blocks(RowSource& src, std::int64_t B, std::mt19937_64& rng) {
    const std::int64_t V = src.rows(), d = src.cols();
    std::vector<std::int64_t> starts;
    for (std::int64_t f = 0; f < V; f += B) starts.push_back(f);
    std::shuffle(starts.begin(), starts.end(), rng);
    std::vector<float> out(static_cast<std::size_t>(V * d), std::nanf(""));
    for (std::int64_t f : starts) src.read_rows(f, std::min(B, V - f), out.data() + f * d);
    return out;
}

bool bit_identical(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<std::string> split_ws(const std::string& s) {
    std::istringstream in(s);
    return {std::istream_iterator<std::string>(in), std::istream_iterator<std::string>()};
}

/// Random per-dimension moments with an offset and spreads over three decades.
void random_moments(std::int64_t d, std::mt19937_64& rng, std::vector<double>& mean,
                    std::vector<double>& variance) {
    std::uniform_real_distribution<double> m(-3.0, 3.0), lv(-3.0, 3.0);
    mean.resize(static_cast<std::size_t>(d));
    variance.resize(static_cast<std::size_t>(d));
    for (std::int64_t c = 0; c < d; ++c) {
        mean[c] = m(rng);
        variance[c] = std::exp(lv(rng));
    }
}

double column_corr(const std::vector<double>& z, std::int64_t V, std::int64_t d, std::int64_t a,
                   std::int64_t b) {
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    for (std::int64_t r = 0; r < V; ++r) {
        const double x = z[r * d + a], y = z[r * d + b];
        sa += x, sb += y, saa += x * x, sbb += y * y, sab += x * y;
    }
    const double n = static_cast<double>(V);
    const double cov = sab / n - (sa / n) * (sb / n);
    return cov / std::sqrt((saa / n - sa * sa / (n * n)) * (sbb / n - sb * sb / (n * n)));
}

// ---- the generator ------------------------------------------------------------------------------

// numpy.random.Philox is Random123's philox4x64_10; its counter is incremented before each block,
// so Philox(counter = c - 1).random_raw(4) is philox4x64_10(c, key).
TEST(GaussianNull, PhiloxMatchesNumpy) {
    // Random123's known-answer vector for philox4x64_10 (counter 0, key 0).
    const std::array<std::uint64_t, 4> kat = {0x16554d9eca36314cULL, 0xdb20fe9d672d0fdcULL,
                                              0xd7e772cee186176bULL, 0x7e68b68aec7ba23bULL};
    EXPECT_EQ(philox4x64_10({0, 0, 0, 0}, {0, 0}), kat);
    std::mt19937_64 rng(fresh_seed());
    const std::uint64_t kMax = ~std::uint64_t{0};
    std::vector<std::array<std::uint64_t, 6>> cases = {{0, 0, 0, 0, 0, 0},
                                                       {kMax, kMax, kMax, kMax, kMax, kMax},
                                                       {0, 1, 0, 0, 7, 0},
                                                       {5, 0, 0, 1, 0, 9}};
    for (int i = 0; i < 6; ++i) cases.push_back({rng(), rng(), rng(), rng(), rng(), rng()});
    std::string args;
    for (const auto& c : cases)
        for (std::uint64_t w : c) args += std::to_string(w) + " ";
    const auto r = run_python(R"(
import sys, numpy as np
a = [int(x) for x in sys.argv[1:]]
for i in range(0, len(a), 6):
    ctr = sum(w << (64 * k) for k, w in enumerate(a[i:i + 4]))
    g = np.random.Philox(key=np.array(a[i + 4:i + 6], dtype=np.uint64), counter=(ctr - 1) % 2**256)
    print(' '.join(str(int(w)) for w in g.random_raw(4)))
)",
                              args);
    const auto words = split_ws(r.out);
    ASSERT_EQ(words.size(), cases.size() * 4) << r.out << r.err;
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const auto& c = cases[i];
        const auto got = philox4x64_10({c[0], c[1], c[2], c[3]}, {c[4], c[5]});
        for (int k = 0; k < 4; ++k)
            EXPECT_EQ(got[k], std::stoull(words[i * 4 + k])) << "case " << i << " word " << k;
    }
}

// The IEEE-only ln / sin / cos against long-double libm, on random words and on the edges: the
// extreme radii (u = 2^-53 and u = 1), angles on and next to every quarter and eighth turn, and
// words that differ only in the 11 discarded low bits.
TEST(GaussianNull, BoxMullerMatchesLongDoubleLibm) {
    std::mt19937_64 rng(fresh_seed());
    const std::uint64_t kMax = ~std::uint64_t{0};
    std::vector<std::uint64_t> radii = {0,
                                        1,
                                        std::uint64_t{1} << 11,
                                        kMax,
                                        kMax << 11,
                                        std::uint64_t{1} << 63,
                                        (std::uint64_t{1} << 63) - 1};
    std::vector<std::uint64_t> angles = {0, kMax};
    for (std::uint64_t eighth = 0; eighth <= 8; ++eighth)
        for (std::int64_t delta : {-1, 0, 1}) {
            const std::int64_t k = static_cast<std::int64_t>(eighth << 50) + delta;
            if (k >= 0 && k < (std::int64_t{1} << 53)) angles.push_back(std::uint64_t(k) << 11);
        }
    for (int i = 0; i < 200; ++i) radii.push_back(rng()), angles.push_back(rng());
    const long double two_pi = 6.283185307179586476925286766559L;
    double worst = 0;
    for (std::uint64_t wr : radii)
        for (std::uint64_t wa : angles) {
            double zc, zs;
            box_muller(wr, wa, zc, zs);
            const long double u = ((wr >> 11) + 1) * 0x1p-53L, v = (wa >> 11) * 0x1p-53L;
            const long double r = std::sqrt(-2.0L * std::log(u));
            const double ref_c = static_cast<double>(r * std::cos(two_pi * v));
            const double ref_s = static_cast<double>(r * std::sin(two_pi * v));
            const double tol = 1e-15 * std::max(1.0, static_cast<double>(r));
            ASSERT_NEAR(zc, ref_c, tol) << "w_radius " << wr << " w_angle " << wa;
            ASSERT_NEAR(zs, ref_s, tol) << "w_radius " << wr << " w_angle " << wa;
            worst = std::max({worst, std::fabs(zc - ref_c), std::fabs(zs - ref_s)});
            double zc2, zs2;
            box_muller(wr ^ (rng() & 0x7ff), wa ^ (rng() & 0x7ff), zc2, zs2);
            ASSERT_EQ(zc2, zc);
            ASSERT_EQ(zs2, zs);
        }
    std::cerr << "largest |z - libm z|: " << worst << "\n";
    double zc, zs;
    box_muller(0, 0, zc, zs);  // u = 2^-53, angle 0: the largest value there is
    EXPECT_NEAR(zc, std::sqrt(106.0 * std::log(2.0)), 1e-14);
    EXPECT_EQ(zs, 0.0);
    box_muller(kMax, rng(), zc, zs);  // u = 1: radius 0
    EXPECT_EQ(zc, 0.0);
    EXPECT_EQ(zs, 0.0);
}

// An independent float64 implementation (numpy's Philox + Box-Muller) gives the same z and,
// after x = mean + stddev * z in float32, the same table to the last float ulp, also at row
// indices beyond 32 bits.
TEST(GaussianNull, NumpyReproducesTheTable) {
    const std::uint64_t seed = fresh_seed();
    const std::int64_t d = 11;
    const std::int64_t V = (std::int64_t{1} << 40) + 5;
    std::mt19937_64 rng(seed);
    std::vector<double> mean, variance;
    random_moments(d, rng, mean, variance);
    auto src = matched_null(V, mean, variance, seed);
    const std::vector<std::int64_t> rows = {0, 1, 2, 4097, (std::int64_t{1} << 32) + 3, V - 1};
    std::string args = std::to_string(seed) + " " + std::to_string(d);
    for (std::int64_t r : rows) args += " " + std::to_string(r);
    const auto res = run_python(R"(
import sys, numpy as np
seed, d = int(sys.argv[1]), int(sys.argv[2])
for row in (int(x) for x in sys.argv[3:]):
    z = []
    for q in range((d + 3) // 4):
        ctr = q + (row << 64)
        key = np.array([seed, 0], dtype=np.uint64)
        w = np.random.Philox(key=key, counter=(ctr - 1) % 2**256).random_raw(4)
        for p in range(2):
            u = float((int(w[2 * p]) >> 11) + 1) * 2.0**-53
            v = float(int(w[2 * p + 1]) >> 11) * 2.0**-53
            rad = np.sqrt(-2.0 * np.log(u))
            z += [rad * np.cos(2 * np.pi * v), rad * np.sin(2 * np.pi * v)]
    print(' '.join(repr(float(x)) for x in z[:d]))
)",
                                args);
    const auto words = split_ws(res.out);
    ASSERT_EQ(words.size(), rows.size() * d) << res.out << res.err;
    std::vector<float> x(static_cast<std::size_t>(d));
    for (std::size_t i = 0; i < rows.size(); ++i) {
        src.read_rows(rows[i], 1, x.data());
        for (std::int64_t c = 0; c < d; ++c) {
            const double z_np = std::stod(words[i * d + c]);
            EXPECT_NEAR(null_standard_normal(seed, rows[i], c), z_np, 1e-13)
                << "row " << rows[i] << " col " << c;
            const float want = static_cast<float>(mean[c] + std::sqrt(variance[c]) * z_np);
            const float ulp = std::nextafter(std::fabs(want), INFINITY) - std::fabs(want);
            EXPECT_LE(std::fabs(x[c] - want), ulp) << "row " << rows[i] << " col " << c;
        }
    }
}

TEST(GaussianNull, BlockSizeReadOrderAndThreadsDoNotMatter) {
    const std::uint64_t seed = fresh_seed();
    std::mt19937_64 rng(seed);
    const std::int64_t V = 2003, d = 13;  // neither a multiple of any block nor of 4 columns
    std::vector<double> mean, variance;
    random_moments(d, rng, mean, variance);
    auto src = matched_null(V, mean, variance, seed);
    const auto ref = read_all(src);
    EXPECT_TRUE(std::all_of(ref.begin(), ref.end(), [](float v) { return std::isfinite(v); }));
    for (std::int64_t B : {std::int64_t{1}, std::int64_t{7}, std::int64_t{1000}, V})
        EXPECT_TRUE(bit_identical(read_shuffled_blocks(src, B, rng), ref)) << "blocks of " << B;
    EXPECT_TRUE(bit_identical(read_all(src), ref)) << "second full read";

    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const auto one_thread = read_all(src);
    omp_set_num_threads(std::max(threads, 3));
    const auto many_threads = read_all(src);
    omp_set_num_threads(threads);
    EXPECT_TRUE(bit_identical(one_thread, ref));
    EXPECT_TRUE(bit_identical(many_threads, ref));

    // Each value is mean + stddev * z(seed, row, col): the shape of the table plays no part.
    GaussianRowSource standard(5000, std::vector<double>(20, 0.0), std::vector<double>(20, 1.0),
                               seed, "standard");
    const auto wide = read_all(standard);
    for (std::int64_t r = 0; r < V; r += 97)
        for (std::int64_t c = 0; c < d; ++c) {
            ASSERT_EQ(wide[r * 20 + c], static_cast<float>(null_standard_normal(seed, r, c)));
            ASSERT_EQ(ref[r * d + c],
                      static_cast<float>(mean[c] + std::sqrt(variance[c]) *
                                                       null_standard_normal(seed, r, c)));
        }

    EXPECT_NO_THROW(src.read_rows(0, 0, nullptr));
    EXPECT_NO_THROW(src.read_rows(V, 0, nullptr));
    std::vector<float> two(2 * d);
    EXPECT_THROW(src.read_rows(V - 1, 2, two.data()), ResourceError);
    EXPECT_THROW(src.read_rows(-1, 1, two.data()), ResourceError);
}

TEST(GaussianNull, SameSeedAgreesOtherSeedDiffers) {
    const std::uint64_t seed = fresh_seed();
    const std::int64_t V = 4000, d = 24;
    auto a = isotropic_null(V, d, 24.0, seed);
    auto b = isotropic_null(V, d, 24.0, seed);
    auto c = isotropic_null(V, d, 24.0, seed + 1);
    const auto xa = read_all(a), xb = read_all(b), xc = read_all(c);
    EXPECT_TRUE(bit_identical(xa, xb));
    std::int64_t equal = 0;
    double sab = 0, saa = 0, scc = 0;
    for (std::size_t i = 0; i < xa.size(); ++i) {
        equal += xa[i] == xc[i];
        sab += double(xa[i]) * xc[i], saa += double(xa[i]) * xa[i], scc += double(xc[i]) * xc[i];
    }
    EXPECT_LT(equal, 10) << "of " << xa.size();
    // Two seeds give independent tables: their element-wise correlation is noise.
    EXPECT_LT(std::fabs(sab / std::sqrt(saa * scc)), 5.0 / std::sqrt(double(xa.size())));
    EXPECT_EQ(a.describe(), "isotropic Gaussian null (seed " + std::to_string(seed) + ")");
}

// V = 20000, d = 16: each column is N(mean[c], variance[c]) (moments within 5 standard errors, 6 for the kurtosis;
// skewness, excess kurtosis, 1.96-sigma coverage and a Kolmogorov-Smirnov distance all as for a
// normal sample), and columns and consecutive rows are uncorrelated (|corr| < 5 / sqrt(V)).
TEST(GaussianNull, ValuesAreIndependentGaussians) {
    const std::uint64_t seed = fresh_seed();
    std::mt19937_64 rng(seed);
    const std::int64_t V = 20000, d = 16;
    std::vector<double> mean, variance;
    random_moments(d, rng, mean, variance);
    auto src = matched_null(V, mean, variance, seed);
    const auto x = read_all(src);
    const double n = static_cast<double>(V);

    std::vector<double> z(x.size());  // standardised with the requested moments
    for (std::int64_t r = 0; r < V; ++r)
        for (std::int64_t c = 0; c < d; ++c)
            z[r * d + c] = (x[r * d + c] - mean[c]) / std::sqrt(variance[c]);

    for (std::int64_t c = 0; c < d; ++c) {
        double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
        for (std::int64_t r = 0; r < V; ++r) {
            const double v = z[r * d + c];
            s1 += v, s2 += v * v, s3 += v * v * v, s4 += v * v * v * v;
        }
        const double m = s1 / n, var = s2 / n - m * m;
        const double skew = (s3 / n - 3 * m * s2 / n + 2 * m * m * m) / std::pow(var, 1.5);
        const double kurt =
            (s4 / n - 4 * m * s3 / n + 6 * m * m * s2 / n - 3 * m * m * m * m) / (var * var) - 3;
        EXPECT_LT(std::fabs(m), 5.0 / std::sqrt(n)) << "mean, column " << c;
        EXPECT_LT(std::fabs(var - 1.0), 5.0 * std::sqrt(2.0 / (n - 1))) << "variance, column " << c;
        EXPECT_LT(std::fabs(skew), 5.0 * std::sqrt(6.0 / n)) << "skewness, column " << c;
        // The sample kurtosis of a normal sample is skewed to the right even at n = 20000 (why
        // D'Agostino's test transforms it), so its upper tail is heavier than the standard
        // error suggests: 5 of them failed once in ~10^3 runs (seed 7844303330824286095,
        // 0.1738 against 0.1732). 6 keep a wrong generator (a uniform's -1.2, a Laplace's 3)
        // hundreds of standard errors out.
        EXPECT_LT(std::fabs(kurt), 6.0 * std::sqrt(24.0 / n)) << "excess kurtosis, column " << c;
        double lag1 = 0;
        for (std::int64_t r = 1; r < V; ++r) lag1 += z[r * d + c] * z[(r - 1) * d + c];
        EXPECT_LT(std::fabs(lag1 / (n - 1)), 5.0 / std::sqrt(n)) << "row lag-1, column " << c;
    }
    for (std::int64_t a = 0; a < d; ++a)
        for (std::int64_t b = a + 1; b < d; ++b)
            EXPECT_LT(std::fabs(column_corr(z, V, d, a, b)), 5.0 / std::sqrt(n))
                << "columns " << a << ", " << b;

    const double N = static_cast<double>(z.size());
    const double inside =
        std::count_if(z.begin(), z.end(), [](double v) { return std::fabs(v) < 1.959963985; }) / N;
    EXPECT_NEAR(inside, 0.95, 5.0 * std::sqrt(0.95 * 0.05 / N));
    std::sort(z.begin(), z.end());
    double ks = 0;
    for (std::size_t i = 0; i < z.size(); ++i) {
        const double cdf = 0.5 * std::erfc(-z[i] / std::sqrt(2.0));
        ks = std::max({ks, cdf - i / N, (i + 1) / N - cdf});
    }
    EXPECT_LT(ks, 2.7 / std::sqrt(N)) << "Kolmogorov-Smirnov D (p ~ 1e-6 at the bound)";
}

// ---- the factories ------------------------------------------------------------------------------

TEST(GaussianNull, IsotropicHasTotalVarianceSpreadEvenly) {
    const std::uint64_t seed = fresh_seed();
    const std::int64_t V = 20000, d = 16;
    const double T = 37.5, s2 = T / d;
    auto src = isotropic_null(V, d, T, seed);
    ASSERT_EQ(src.rows(), V);
    ASSERT_EQ(src.cols(), d);
    for (std::int64_t c = 0; c < d; ++c) {
        EXPECT_EQ(src.mean()[c], 0.0);
        EXPECT_DOUBLE_EQ(src.stddev()[c] * src.stddev()[c], s2);
    }
    const auto m = column_moments(src, {});
    EXPECT_EQ(m.n, V);
    for (std::int64_t c = 0; c < d; ++c) {
        EXPECT_LT(std::fabs(m.mean[c]), 5.0 * std::sqrt(s2 / V)) << c;
        EXPECT_LT(std::fabs(m.variance[c] - s2), 5.0 * s2 * std::sqrt(2.0 / V)) << c;
    }
    EXPECT_LT(std::fabs(m.total_variance - T), 5.0 * s2 * std::sqrt(2.0 * d / V));

    auto flat = isotropic_null(10, 3, 0.0, seed);
    const auto zeros = read_all(flat);
    EXPECT_TRUE(std::all_of(zeros.begin(), zeros.end(), [](float v) { return v == 0.0f; }));
}

// A correlated, offset "real" table -> its column moments -> the matched null reproduces the
// moments but not the correlation.
TEST(GaussianNull, MatchedReproducesMeanAndVarianceButNotStructure) {
    const std::uint64_t seed = fresh_seed();
    std::mt19937_64 rng(seed);
    const std::int64_t V = 20000, d = 16;
    std::normal_distribution<double> g;
    std::vector<double> offset(d), mix(d * d);
    for (auto& v : offset) v = 4.0 * g(rng);
    for (auto& v : mix) v = g(rng);
    mix[0] = 1.0, mix[d] = 2.0;  // corr(column 0, column 1) = 2 / sqrt(4 + mix[d + 1]^2)
    std::vector<float> real(static_cast<std::size_t>(V * d));
    std::vector<double> h(d);
    for (std::int64_t r = 0; r < V; ++r) {
        for (auto& v : h) v = g(rng);
        for (std::int64_t c = 0; c < d; ++c) {
            double v = offset[c];
            for (std::int64_t k = 0; k <= c; ++k) v += mix[c * d + k] * h[k];
            real[r * d + c] = static_cast<float>(v);
        }
    }
    MemoryRowSource real_src(MatrixView<const float>(real.data(), V, d), "real");
    const auto rm = column_moments(real_src, {});
    auto null = matched_null(V, rm.mean, rm.variance, seed);
    EXPECT_EQ(null.describe(), "matched Gaussian null (seed " + std::to_string(seed) + ")");
    for (std::int64_t c = 0; c < d; ++c) {
        EXPECT_EQ(null.mean()[c], rm.mean[c]);
        EXPECT_DOUBLE_EQ(null.stddev()[c], std::sqrt(rm.variance[c]));
    }
    const auto nm = column_moments(null, {});
    double total_var_se2 = 0;
    for (std::int64_t c = 0; c < d; ++c) {
        const double s2 = rm.variance[c];
        EXPECT_LT(std::fabs(nm.mean[c] - rm.mean[c]), 5.0 * std::sqrt(s2 / V)) << c;
        EXPECT_LT(std::fabs(nm.variance[c] - s2), 5.0 * s2 * std::sqrt(2.0 / V)) << c;
        total_var_se2 += 2.0 * s2 * s2 / V;
    }
    EXPECT_LT(std::fabs(nm.total_variance - rm.total_variance), 5.0 * std::sqrt(total_var_se2));

    // Column 1 of the real table shares column 0's source: |corr| > 0.2 unless |mix[d + 1]| > 9.8.
    const auto x = read_all(null);
    std::vector<double> xr(real.begin(), real.end()), xn(x.begin(), x.end());
    EXPECT_GT(std::fabs(column_corr(xr, V, d, 0, 1)), 0.1);
    EXPECT_LT(std::fabs(column_corr(xn, V, d, 0, 1)), 5.0 / std::sqrt(double(V)));
}

TEST(GaussianNull, PreconditionsAreChecked) {
    EXPECT_THROW(isotropic_null(10, 0, 1.0, 1), ResourceError);
    EXPECT_THROW(isotropic_null(10, 4, -1.0, 1), ResourceError);
    EXPECT_THROW(isotropic_null(10, 4, NAN, 1), ResourceError);
    EXPECT_THROW(isotropic_null(-1, 4, 1.0, 1), ResourceError);
    EXPECT_THROW(matched_null(10, {0.0, 0.0}, {1.0}, 1), ResourceError);
    EXPECT_THROW(matched_null(10, {}, {}, 1), ResourceError);
    EXPECT_THROW(matched_null(10, {0.0}, {-1.0}, 1), ResourceError);
    EXPECT_THROW(matched_null(10, {NAN}, {1.0}, 1), ResourceError);
    EXPECT_THROW(matched_null(10, {0.0}, {INFINITY}, 1), ResourceError);
    EXPECT_NO_THROW(matched_null(0, {0.0}, {0.0}, 1));
}

// ---- column_moments -----------------------------------------------------------------------------

// Against numpy (float64 mean and var, ddof = 0) on an offset table with ~30% of rows masked out
// (some of them NaN, which must be ignored); bit-identical for every block size.
TEST(ColumnMoments, MatchesNumpyForAnyBlockSize) {
    const std::uint64_t seed = fresh_seed();
    std::mt19937_64 rng(seed);
    const std::int64_t V = 1537, d = 37;
    auto x = test::random_table(V, d, seed);
    std::uniform_real_distribution<double> off(-100.0, 100.0), lsc(-4.0, 2.0);
    for (std::int64_t c = 0; c < d; ++c) {
        const double o = off(rng), s = std::exp(lsc(rng));
        for (std::int64_t r = 0; r < V; ++r)
            x[r * d + c] = static_cast<float>(o + s * x[r * d + c]);
    }
    std::bernoulli_distribution drop(0.3);
    std::vector<std::uint8_t> valid(static_cast<std::size_t>(V));
    for (std::int64_t r = 0; r < V; ++r) {
        valid[r] = drop(rng) ? 0 : 1;
        if (!valid[r] && r % 5 == 0) x[r * d + r % d] = std::nanf("");
    }
    TempDir tmp;
    write_binary(tmp.file("x.f32"), x);
    write_binary(tmp.file("valid.u8"), valid);
    run_python(R"(
import sys, numpy as np
V, d, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
x = np.fromfile(path + '/x.f32', dtype=np.float32).reshape(V, d).astype(np.float64)
valid = np.fromfile(path + '/valid.u8', dtype=np.uint8).astype(bool)
for name, rows in (('masked', x[valid]), ('all', x[~np.isnan(x).any(axis=1)])):
    var = rows.var(axis=0)
    np.concatenate([rows.mean(axis=0), var, [var.sum(), rows.shape[0]]]).tofile(path + '/' + name + '.f64')
)",
               std::to_string(V) + " " + std::to_string(d) + " " + test::shell_quote(tmp.path()));
    const auto ref = read_doubles(tmp.file("masked.f64"));
    ASSERT_EQ(ref.size(), static_cast<std::size_t>(2 * d + 2));

    MemoryRowSource src(MatrixView<const float>(x.data(), V, d), "masked table");
    const auto m = column_moments(src, valid);
    EXPECT_EQ(m.n, static_cast<std::int64_t>(ref[2 * d + 1]));
    for (std::int64_t c = 0; c < d; ++c) {
        const double sd = std::sqrt(ref[d + c]);
        EXPECT_NEAR(m.mean[c], ref[c], 1e-12 * (std::fabs(ref[c]) + sd)) << c;
        EXPECT_NEAR(m.variance[c], ref[d + c], 1e-11 * ref[d + c]) << c;
    }
    EXPECT_NEAR(m.total_variance, ref[2 * d], 1e-11 * ref[2 * d]);

    for (std::int64_t B : {std::int64_t{1}, std::int64_t{7}, std::int64_t{64}, std::int64_t{1000},
                           V, std::int64_t{5 * V}}) {
        const auto mb = column_moments(src, valid, B);
        EXPECT_EQ(mb.n, m.n);
        EXPECT_EQ(mb.mean, m.mean) << "blocks of " << B;
        EXPECT_EQ(mb.variance, m.variance) << "blocks of " << B;
        EXPECT_EQ(mb.total_variance, m.total_variance) << "blocks of " << B;
    }

    // The rows without NaN, given as an explicit mask, against numpy's "all finite rows".
    const auto ref_all = read_doubles(tmp.file("all.f64"));
    std::vector<std::uint8_t> finite(static_cast<std::size_t>(V), 1);
    for (std::int64_t r = 0; r < V; ++r)
        for (std::int64_t c = 0; c < d; ++c)
            if (std::isnan(x[r * d + c])) finite[r] = 0;
    const auto ma = column_moments(src, finite, 100);
    EXPECT_EQ(ma.n, static_cast<std::int64_t>(ref_all[2 * d + 1]));
    for (std::int64_t c = 0; c < d; ++c)
        EXPECT_NEAR(ma.variance[c], ref_all[d + c], 1e-11 * ref_all[d + c]) << c;
}

TEST(ColumnMoments, EmptyMaskMeansEveryRow) {
    const std::int64_t V = 3, d = 2;
    const std::vector<float> x = {1, 10, 2, 20, 6, 30};
    MemoryRowSource src(MatrixView<const float>(x.data(), V, d));
    const auto m = column_moments(src, {}, 2);
    EXPECT_EQ(m.n, 3);
    EXPECT_DOUBLE_EQ(m.mean[0], 3.0);
    EXPECT_DOUBLE_EQ(m.mean[1], 20.0);
    EXPECT_DOUBLE_EQ(m.variance[0], 14.0 / 3.0);
    EXPECT_DOUBLE_EQ(m.variance[1], 200.0 / 3.0);
    EXPECT_DOUBLE_EQ(m.total_variance, 214.0 / 3.0);
    const auto one = column_moments(src, {0, 1, 0});
    EXPECT_EQ(one.n, 1);
    EXPECT_EQ(one.mean, (std::vector<double>{2.0, 20.0}));
    EXPECT_EQ(one.variance, (std::vector<double>{0.0, 0.0}));
}

TEST(ColumnMoments, RefusesBadInput) {
    std::vector<float> x = {1, 2, 3, 4, 5, 6};
    MemoryRowSource src(MatrixView<const float>(x.data(), 3, 2), "t.h5:/emb");
    EXPECT_THROW(column_moments(src, {1, 1}), ResourceError);
    try {
        column_moments(src, {0, 0, 0});
        ADD_FAILURE() << "no valid rows accepted";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("t.h5:/emb"), std::string::npos) << e.what();
    }
    x[3] = std::nanf("");
    EXPECT_THROW(column_moments(src, {}), InputError);
    EXPECT_NO_THROW(column_moments(src, {1, 0, 1}));
    x[3] = INFINITY;
    EXPECT_THROW(column_moments(src, {}), InputError);
    std::vector<float> none;
    MemoryRowSource empty(MatrixView<const float>(none.data(), 0, 2));
    EXPECT_THROW(column_moments(empty, {}), InputError);
}

// Not run by default (timings on shared cores are noise): --gtest_also_run_disabled_tests.
TEST(GaussianNull, DISABLED_Throughput50kx768) {
    auto src = isotropic_null(50000, 768, 768.0, 7);
    std::vector<float> out(static_cast<std::size_t>(50000) * 768);
    for (int rep = 0; rep < 3; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        src.read_rows(0, src.rows(), out.data());
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::cout << "50000 x 768 in " << s << " s on " << omp_get_max_threads() << " threads ("
                  << 50000.0 * 768 / s / 1e6 << " M values/s)\n";
    }
}

}  // namespace
}  // namespace embgeom
