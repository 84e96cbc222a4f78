#include "synth/gaussian_row_source.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "embgeom/errors.hpp"

// The same words must give the same bits on every machine: no contraction of a * b + c into an
// FMA (one rounding instead of two) in this file, whatever -march the build uses.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace embgeom {
namespace {

// Random123 constants for Philox4x64: round multipliers and Weyl key increments.
constexpr std::uint64_t kPhiloxM0 = 0xD2E7470EE14C6C93ULL;
constexpr std::uint64_t kPhiloxM1 = 0xCA5A826395121157ULL;
constexpr std::uint64_t kPhiloxW0 = 0x9E3779B97F4A7C15ULL;
constexpr std::uint64_t kPhiloxW1 = 0xBB67AE8584CAA73BULL;
constexpr double kTwoToMinus53 = 1.0 / 9007199254740992.0;
constexpr double kTwoPiTimes2ToMinus53 = 6.283185307179586476925286766559 / 9007199254740992.0;
constexpr double kLn2 = 0.693147180559945309417232121458176568;
constexpr double kSqrt2 = 1.41421356237309504880168872420969808;

inline void mulhilo(std::uint64_t a, std::uint64_t b, std::uint64_t& hi, std::uint64_t& lo) {
    const unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
    hi = static_cast<std::uint64_t>(p >> 64);
    lo = static_cast<std::uint64_t>(p);
}

// 1 / n! for n < 20, each rounded once: n! is exact in double up to 22! (odd part below 2^53).
constexpr std::array<double, 20> make_inv_factorials() {
    std::array<double, 20> a{};
    double f = 1.0;
    for (int n = 0; n < 20; ++n) {
        if (n > 1) f *= n;
        a[n] = 1.0 / f;
    }
    return a;
}
constexpr std::array<double, 20> kInvFactorial = make_inv_factorials();

// 1 / (2k + 1) for k < 11.
constexpr std::array<double, 11> make_inv_odd() {
    std::array<double, 11> a{};
    for (int k = 0; k < 11; ++k) a[k] = 1.0 / (2 * k + 1);
    return a;
}
constexpr std::array<double, 11> kInvOdd = make_inv_odd();

// ln u for u in [2^-53, 1]: u = 2^e m with m in (sqrt(1/2), sqrt(2)], ln m = 2 atanh(s) with
// s = (m - 1) / (m + 1), |s| <= 0.1716; the odd series of atanh to s^21 leaves < 1e-18.
inline double log_unit(double u) {
    std::uint64_t bits;
    std::memcpy(&bits, &u, sizeof bits);
    int e = static_cast<int>(bits >> 52) - 1023;
    bits = (bits & ((std::uint64_t{1} << 52) - 1)) | (std::uint64_t{1023} << 52);
    double m;
    std::memcpy(&m, &bits, sizeof m);
    if (m > kSqrt2) {
        m *= 0.5;
        ++e;
    }
    const double s = (m - 1.0) / (m + 1.0), t = s * s;
    double p = kInvOdd[10];
    for (int k = 9; k >= 0; --k) p = p * t + kInvOdd[k];
    return e * kLn2 + 2.0 * s * p;
}

// sin and cos of 2 pi k 2^-53 for k < 2^53. Reduction to the nearest quarter turn is exact in
// integers, leaving |x| <= pi/4 where the Taylor series to x^19 (sin) and x^18 (cos) truncate
// below 1e-19.
inline void sincos_turn(std::uint64_t k, double& sin_out, double& cos_out) {
    const std::uint64_t quarter = (k + (std::uint64_t{1} << 50)) >> 51;  // 0..4
    const auto f = static_cast<std::int64_t>(k) - static_cast<std::int64_t>(quarter << 51);
    const double x = static_cast<double>(f) * kTwoPiTimes2ToMinus53;
    const double t = -x * x;
    double ps = kInvFactorial[19], pc = kInvFactorial[18];
    for (int j = 8; j >= 0; --j) {
        ps = ps * t + kInvFactorial[2 * j + 1];
        pc = pc * t + kInvFactorial[2 * j];
    }
    const double s = x * ps, c = pc;
    // A quarter turn only swaps and negates: (sin, cos)(x + q pi/2).
    const double sin_q[4] = {s, c, -s, -c}, cos_q[4] = {c, -s, -c, s};
    sin_out = sin_q[quarter & 3];
    cos_out = cos_q[quarter & 3];
}

inline void box_muller_inline(std::uint64_t w_radius, std::uint64_t w_angle, double& z_cos,
                              double& z_sin) {
    const double u = static_cast<double>((w_radius >> 11) + 1) * kTwoToMinus53;
    const double r = std::sqrt(-2.0 * log_unit(u));
    double s, c;
    sincos_turn(w_angle >> 11, s, c);
    z_cos = r * c;
    z_sin = r * s;
}

// The four standard normals of columns 4q .. 4q+3 of a row. Only the first `lanes` are needed;
// the second Box-Muller pair is skipped when lanes <= 2 (the last quad of a narrow row).
inline void normal_quad(std::uint64_t seed, std::int64_t row, std::int64_t quad, int lanes,
                        double z[4]) {
    const auto w = philox4x64_10(
        {static_cast<std::uint64_t>(quad), static_cast<std::uint64_t>(row), 0, 0}, {seed, 0});
    box_muller_inline(w[0], w[1], z[0], z[1]);
    if (lanes > 2) box_muller_inline(w[2], w[3], z[2], z[3]);
}

bool all_finite(const std::vector<double>& v) {
    return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

}  // namespace

std::array<std::uint64_t, 4> philox4x64_10(std::array<std::uint64_t, 4> ctr,
                                           std::array<std::uint64_t, 2> key) noexcept {
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            key[0] += kPhiloxW0;
            key[1] += kPhiloxW1;
        }
        std::uint64_t hi0, lo0, hi1, lo1;
        mulhilo(kPhiloxM0, ctr[0], hi0, lo0);
        mulhilo(kPhiloxM1, ctr[2], hi1, lo1);
        ctr = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
    }
    return ctr;
}

void box_muller(std::uint64_t w_radius, std::uint64_t w_angle, double& z_cos,
                double& z_sin) noexcept {
    box_muller_inline(w_radius, w_angle, z_cos, z_sin);
}

double null_standard_normal(std::uint64_t seed, std::int64_t row, std::int64_t col) noexcept {
    double z[4];
    normal_quad(seed, row, col / 4, 4, z);
    return z[col % 4];
}

GaussianRowSource::GaussianRowSource(std::int64_t rows, std::vector<double> mean,
                                     std::vector<double> stddev, std::uint64_t seed,
                                     std::string model)
    : rows_(rows),
      mean_(std::move(mean)),
      stddev_(std::move(stddev)),
      seed_(seed),
      model_(std::move(model)) {
    EMBGEOM_EXPECTS(rows_ >= 0, "Gaussian null: negative row count");
    EMBGEOM_EXPECTS(!mean_.empty(), "Gaussian null: no dimensions");
    EMBGEOM_EXPECTS(mean_.size() == stddev_.size(),
                    "Gaussian null: " + std::to_string(mean_.size()) + " means for " +
                        std::to_string(stddev_.size()) + " standard deviations");
    EMBGEOM_EXPECTS(all_finite(mean_) && all_finite(stddev_), "Gaussian null: non-finite moment");
    EMBGEOM_EXPECTS(std::all_of(stddev_.begin(), stddev_.end(), [](double s) { return s >= 0.0; }),
                    "Gaussian null: negative standard deviation");
}

void GaussianRowSource::read_rows(std::int64_t first, std::int64_t count, float* out) {
    EMBGEOM_EXPECTS(first >= 0 && count >= 0 && first <= rows_ && count <= rows_ - first,
                    "row range");
    const std::int64_t d = cols();
    const std::int64_t quads = (d + 3) / 4;
    const double* mean = mean_.data();
    const double* stddev = stddev_.data();
    const std::uint64_t seed = seed_;
    // Each value is a pure function of (seed, row, col), so the split over threads cannot change
    // the result. Below ~16k values a parallel region costs more than it saves.
#pragma omp parallel for schedule(static) if (count * d >= 16384)
    for (std::int64_t r = 0; r < count; ++r) {
        float* x = out + r * d;
        double z[4];
        for (std::int64_t q = 0; q < quads; ++q) {
            const int lanes = static_cast<int>(std::min<std::int64_t>(4, d - 4 * q));
            normal_quad(seed, first + r, q, lanes, z);
            for (int l = 0; l < lanes; ++l) {
                const std::int64_t c = 4 * q + l;
                x[c] = static_cast<float>(mean[c] + stddev[c] * z[l]);
            }
        }
    }
}

std::string GaussianRowSource::describe() const {
    return model_ + " Gaussian null (seed " + std::to_string(seed_) + ")";
}

GaussianRowSource isotropic_null(std::int64_t V, std::int64_t d, double total_variance,
                                 std::uint64_t seed) {
    EMBGEOM_EXPECTS(d >= 1, "isotropic null: d = " + std::to_string(d));
    EMBGEOM_EXPECTS(std::isfinite(total_variance) && total_variance >= 0.0,
                    "isotropic null: total variance must be finite and >= 0");
    const auto n = static_cast<std::size_t>(d);
    return GaussianRowSource(
        V, std::vector<double>(n, 0.0),
        std::vector<double>(n, std::sqrt(total_variance / static_cast<double>(d))), seed,
        "isotropic");
}

GaussianRowSource matched_null(std::int64_t V, const std::vector<double>& mean,
                               const std::vector<double>& variance, std::uint64_t seed) {
    EMBGEOM_EXPECTS(mean.size() == variance.size(),
                    "matched null: " + std::to_string(mean.size()) + " means for " +
                        std::to_string(variance.size()) + " variances");
    EMBGEOM_EXPECTS(all_finite(variance) && std::all_of(variance.begin(), variance.end(),
                                                        [](double v) { return v >= 0.0; }),
                    "matched null: variances must be finite and >= 0");
    std::vector<double> stddev(variance.size());
    std::transform(variance.begin(), variance.end(), stddev.begin(),
                   [](double v) { return std::sqrt(v); });
    return GaussianRowSource(V, mean, std::move(stddev), seed, "matched");
}

ColumnMoments column_moments(RowSource& src, const std::vector<std::uint8_t>& valid,
                             std::int64_t block_rows) {
    const std::int64_t V = src.rows(), d = src.cols();
    EMBGEOM_EXPECTS(valid.empty() || static_cast<std::int64_t>(valid.size()) == V,
                    "valid mask has " + std::to_string(valid.size()) + " entries for " +
                        std::to_string(V) + " rows");
    EMBGEOM_EXPECTS(block_rows >= 0, "negative block_rows");
    const std::int64_t auto_rows =
        std::max<std::int64_t>(1, (std::int64_t{32} << 20) / (4 * std::max<std::int64_t>(d, 1)));
    const std::int64_t B =
        std::min(block_rows > 0 ? block_rows : auto_rows, std::max<std::int64_t>(V, 1));

    ColumnMoments m;
    m.mean.assign(static_cast<std::size_t>(d), 0.0);
    std::vector<double> m2(static_cast<std::size_t>(d), 0.0);
    double* mean = m.mean.data();
    double* sq = m2.data();
    std::vector<float> buf(static_cast<std::size_t>(B * d));
    // Welford in row order: every block size feeds the same sequence of updates.
    for (std::int64_t first = 0; first < V; first += B) {
        const std::int64_t count = std::min(B, V - first);
        src.read_rows(first, count, buf.data());
        for (std::int64_t r = 0; r < count; ++r) {
            if (!valid.empty() && valid[static_cast<std::size_t>(first + r)] == 0) continue;
            const double inv_k = 1.0 / static_cast<double>(++m.n);
            const float* x = buf.data() + r * d;
            for (std::int64_t c = 0; c < d; ++c) {
                const double xc = x[c];
                const double delta = xc - mean[c];
                mean[c] += delta * inv_k;
                sq[c] += delta * (xc - mean[c]);
            }
        }
    }
    if (m.n == 0) throw InputError("column moments of " + src.describe() + ": no valid rows");
    // A NaN or an infinity in any valid row propagates into its column's mean or m2.
    if (!all_finite(m.mean) || !all_finite(m2))
        throw InputError("column moments of " + src.describe() +
                         ": a valid row holds a NaN or an infinity (mask non-finite rows)");
    m.variance.resize(static_cast<std::size_t>(d));
    for (std::int64_t c = 0; c < d; ++c) {
        m.variance[c] = sq[c] / static_cast<double>(m.n);
        m.total_variance += m.variance[c];
    }
    return m;
}

}  // namespace embgeom
