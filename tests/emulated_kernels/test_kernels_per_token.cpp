// The per-token kernels (kernels/column_sums.cu, row_norms.cu, distances_to_point.cu,
// normalize_rows.cu, row_means.cu, convert_rows.cu, exact16_check.cu, rows_to_shifted_double.cu,
// projection_rows.cu, direction_extremes.cu) run by the kernel emulator against their contracts:
// bit for bit against src/engine where a header promises that, otherwise against references
// written here from the header's words. Inputs hold NaN wherever a kernel must not read (the
// padding beyond cols, rows it is told to skip), so a stray read shows in the result.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "column_sums.cuh"
#include "convert_rows.cuh"
#include "direction_extremes.cuh"
#include "distances_to_point.cuh"
#include "engine/precision_policy.hpp"
#include "engine/row_normalize.hpp"
#include "exact16_check.cuh"
#include "format_definitions.hpp"
#include "kernel_emulator.hpp"
#include "normalize_rows.cuh"
#include "projection_rows.cuh"
#include "row_means.cuh"
#include "row_norms.cuh"
#include "rows_to_shifted_double.cuh"

namespace {

namespace kn = embgeom::kernels;
namespace emu = embgeom::emu;
namespace engine = embgeom::engine;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr unsigned kBothFlags = kn::kNotBf16Exact | kn::kNotFp16Exact;

using embgeom::test_formats::bf16_value;
using embgeom::test_formats::bits;
using embgeom::test_formats::fp16_value;
using embgeom::test_formats::from_bits;

std::string hex(double v) {
    char s[64];
    std::snprintf(s, sizeof s, "%a", v);
    return s;
}

template <class T>
void expect_same_bits(const std::vector<T>& got, const std::vector<T>& want, const char* what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (std::size_t e = 0; e < want.size(); ++e)
        ASSERT_EQ(bits(got[e]), bits(want[e]))
            << what << "[" << e << "]: " << hex(static_cast<double>(got[e])) << ", want "
            << hex(static_cast<double>(want[e]));
}

// Thread orders no result may depend on. The guard puts the emulator back in forward order when
// a test ends, failed assertions included.
constexpr emu::Schedule kOrders[] = {emu::Schedule::kForward, emu::Schedule::kReverse,
                                     emu::Schedule::kShuffled};
struct ScheduleGuard {
    ~ScheduleGuard() { emu::set_schedule(emu::Schedule::kForward); }
};

// Row-major [rows, cols] with leading dimension ld; the padding (columns cols .. ld) is NaN.
struct Table {
    std::int64_t rows, cols, ld;
    std::vector<float> x;
    float& at(std::int64_t r, std::int64_t c) { return x[r * ld + c]; }
    float at(std::int64_t r, std::int64_t c) const { return x[r * ld + c]; }
    float* row(std::int64_t r) { return x.data() + r * ld; }
    const float* row(std::int64_t r) const { return x.data() + r * ld; }
    bool row_finite(std::int64_t r) const {
        return std::all_of(row(r), row(r) + cols, [](float v) { return std::isfinite(v); });
    }
};

// Full float32 significands over magnitudes 2^-20 .. 2^20: float64 sums of them taken in any
// other order than the contract's, or squares taken in float32, give other bits.
Table wide_table(std::int64_t rows, std::int64_t cols, std::int64_t ld, std::mt19937& rng) {
    std::normal_distribution<float> g;
    std::uniform_int_distribution<int> scale(-20, 20);
    Table t{rows, cols, ld, std::vector<float>(static_cast<std::size_t>(rows * ld), kNaN)};
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c) t.at(r, c) = std::ldexp(g(rng), scale(rng));
    return t;
}

std::vector<double> random_doubles(std::int64_t n, std::mt19937& rng, double scale = 1.0) {
    std::normal_distribution<double> g(0.0, scale);
    std::vector<double> v(static_cast<std::size_t>(n));
    for (double& x : v) x = g(rng);
    return v;
}

// Masks whose set entries are any non-zero byte, as the contracts say, not only 1.
std::vector<std::uint8_t> random_valid(std::int64_t n, std::mt19937& rng, double invalid_share) {
    std::bernoulli_distribution drop(invalid_share);
    std::uniform_int_distribution<int> pick(0, 2);
    const std::uint8_t set[] = {1, 2, 255};
    std::vector<std::uint8_t> m(static_cast<std::size_t>(n));
    for (auto& v : m) v = drop(rng) ? 0 : set[pick(rng)];
    return m;
}

void poison_invalid_rows(Table& t, const std::vector<std::uint8_t>& valid) {
    for (std::int64_t r = 0; r < t.rows; ++r)
        if (!valid[r]) std::fill_n(t.row(r), t.cols, kNaN);
}

// ---------------------------------------------------------------------------------------------
// launch_column_sums

std::vector<double> host_column_sums(const Table& t, const std::vector<std::uint8_t>& mask,
                                     std::vector<double> sums) {
    for (std::int64_t r = 0; r < t.rows; ++r)
        if (mask[r])
            for (std::int64_t c = 0; c < t.cols; ++c) sums[c] += static_cast<double>(t.at(r, c));
    return sums;
}

TEST(EmulatedColumnSums, MatchTheHostRowOrderSumBitForBit) {
    std::mt19937 rng(101);
    // Rows around the kernel's 128-row stages, columns around its 32-column blocks.
    for (std::int64_t rows : {1, 127, 128, 129, 300})
        for (std::int64_t cols : {1, 3, 33, 70}) {
            SCOPED_TRACE(std::to_string(rows) + " x " + std::to_string(cols));
            Table t = wide_table(rows, cols, cols + 5, rng);
            std::vector<std::uint8_t> mask = random_valid(rows, rng, 0.2);
            if (rows > 100) {
                mask[rows / 2] = 1;
                t.at(rows / 2, cols - 1) = kInf;
            }
            poison_invalid_rows(t, mask);
            // Non-zero starting sums: the kernel adds onto them.
            std::vector<double> sums = random_doubles(cols, rng, 1e3);
            const std::vector<double> want = host_column_sums(t, mask, sums);
            kn::launch_column_sums(t.x.data(), rows, cols, t.ld, mask.data(), sums.data(), nullptr);
            expect_same_bits(sums, want, "sums");
        }
}

TEST(EmulatedColumnSums, RowsSplitOverTwoLaunchesGiveTheSameBits) {
    std::mt19937 rng(102);
    for (std::int64_t ld : {70, 77}) {
        Table t = wide_table(300, 70, ld, rng);
        const std::vector<std::uint8_t> mask = random_valid(300, rng, 0.2);
        poison_invalid_rows(t, mask);
        const std::vector<double> start = random_doubles(70, rng, 1e3);
        const std::vector<double> want = host_column_sums(t, mask, start);
        // The bits tell orders apart: summing the rows backwards gives others.
        std::vector<double> backwards = start;
        for (std::int64_t r = 299; r >= 0; --r)
            if (mask[r])
                for (std::int64_t c = 0; c < 70; ++c) backwards[c] += t.at(r, c);
        ASSERT_NE(backwards, want);
        for (std::int64_t split : {1, 128, 129, 211}) {
            SCOPED_TRACE("ld " + std::to_string(ld) + ", split at row " + std::to_string(split));
            std::vector<double> sums = start;
            kn::launch_column_sums(t.x.data(), split, 70, ld, mask.data(), sums.data(), nullptr);
            kn::launch_column_sums(t.row(split), 300 - split, 70, ld, mask.data() + split,
                                   sums.data(), nullptr);
            expect_same_bits(sums, want, "sums");
        }
    }
}

TEST(EmulatedColumnSums, BitsDoNotDependOnThreadOrder) {
    ScheduleGuard guard;
    std::mt19937 rng(103);
    for (std::int64_t rows : {129, 300}) {
        const std::int64_t cols = rows == 129 ? 33 : 70;
        Table t = wide_table(rows, cols, cols + 2, rng);
        const std::vector<std::uint8_t> mask = random_valid(rows, rng, 0.2);
        poison_invalid_rows(t, mask);
        const std::vector<double> start = random_doubles(cols, rng, 1e3);
        const std::vector<double> want = host_column_sums(t, mask, start);
        for (emu::Schedule order : kOrders) {
            SCOPED_TRACE("rows " + std::to_string(rows) + ", schedule " +
                         std::to_string(static_cast<int>(order)));
            emu::set_schedule(order, 17);
            std::vector<double> sums = start;
            kn::launch_column_sums(t.x.data(), rows, cols, t.ld, mask.data(), sums.data(), nullptr);
            expect_same_bits(sums, want, "sums");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// launch_row_norms, launch_distances_to_point

// ||x - point|| with the differences and their sum in long double (64-bit significand): the
// exact norm to far better than float32's resolution, then rounded once more to float32.
float reference_norm(const float* x, const double* point, std::int64_t cols) {
    long double s = 0.0L;
    for (std::int64_t c = 0; c < cols; ++c) {
        const long double d =
            static_cast<long double>(x[c]) - static_cast<long double>(point ? point[c] : 0.0);
        s += d * d;
    }
    return static_cast<float>(std::sqrt(s));
}

// The kernels sum in float64 in an order of their own: relative error <= (cols + 2) 2^-53, about
// 1e-14 here. That moves a float32 result only when the exact norm lies within 1e-14 (relative)
// of a rounding midpoint, and then by one ulp; float32 arithmetic anywhere would miss by far more.
bool within_one_ulp(float got, float want) {
    return got == want || got == std::nextafter(want, kInf) || got == std::nextafter(want, -kInf);
}

struct Shape {
    std::int64_t rows, cols, ld;
};

TEST(EmulatedRowNorms, NormsAreFloat64WithinOneUlpAndNonFiniteRowsAreFlagged) {
    std::mt19937 rng(201);
    for (const Shape s : {Shape{45, 70, 75}, Shape{9, 1, 4}, Shape{17, 33, 33}}) {
        SCOPED_TRACE("cols " + std::to_string(s.cols));
        Table t = wide_table(s.rows, s.cols, s.ld, rng);
        std::fill_n(t.row(0), s.cols, 0.0f);
        std::fill_n(t.row(1), s.cols, 1e30f);    // the squares overflow float32
        std::fill_n(t.row(2), s.cols, -1e-30f);  // the squares underflow float32
        t.at(3, s.cols - 1) = kNaN;
        t.at(4, 0) = -kInf;
        t.at(5, s.cols / 2) = kInf;
        std::vector<float> norms(s.rows, -1.0f);
        std::vector<std::uint8_t> finite(s.rows, 7);
        kn::launch_row_norms(t.x.data(), s.rows, s.cols, s.ld, norms.data(), finite.data(),
                             nullptr);
        for (std::int64_t r = 0; r < s.rows; ++r) {
            const bool ok = t.row_finite(r);
            EXPECT_EQ(finite[r], ok ? 1 : 0) << "row " << r;
            if (!ok) {
                EXPECT_TRUE(std::isnan(norms[r])) << "row " << r << ": " << norms[r];
                continue;
            }
            const float want = reference_norm(t.row(r), nullptr, s.cols);
            EXPECT_TRUE(within_one_ulp(norms[r], want))
                << "row " << r << ": " << hex(norms[r]) << ", want " << hex(want);
        }
        EXPECT_EQ(bits(norms[0]), bits(0.0f));
    }
}

TEST(EmulatedDistancesToPoint, DistancesAreFloat64WithinOneUlp) {
    std::mt19937 rng(202);
    for (const Shape s : {Shape{45, 70, 75}, Shape{9, 1, 4}}) {
        SCOPED_TRACE("cols " + std::to_string(s.cols));
        Table t = wide_table(s.rows, s.cols, s.ld, rng);
        const std::vector<double> point = random_doubles(s.cols, rng);
        // Row 0 is the point rounded to float32: its distance is the rounding residue, which
        // only float64 differences keep. Row 1's squared differences overflow float32.
        for (std::int64_t c = 0; c < s.cols; ++c) {
            t.at(0, c) = static_cast<float>(point[c]);
            t.at(1, c) = 1e20f;
        }
        std::vector<float> out(s.rows, -1.0f);
        kn::launch_distances_to_point(t.x.data(), s.rows, s.cols, s.ld, point.data(), out.data(),
                                      nullptr);
        for (std::int64_t r = 0; r < s.rows; ++r) {
            const float want = reference_norm(t.row(r), point.data(), s.cols);
            EXPECT_TRUE(within_one_ulp(out[r], want))
                << "row " << r << ": " << hex(out[r]) << ", want " << hex(want);
        }
        EXPECT_GT(out[0], 0.0f);

        // The point at a row of the table: distance exactly 0 there.
        const std::vector<double> at_row(t.row(2), t.row(2) + s.cols);
        kn::launch_distances_to_point(t.x.data(), s.rows, s.cols, s.ld, at_row.data(), out.data(),
                                      nullptr);
        EXPECT_EQ(bits(out[2]), bits(0.0f));
        for (std::int64_t r = 0; r < s.rows; ++r)
            EXPECT_TRUE(within_one_ulp(out[r], reference_norm(t.row(r), at_row.data(), s.cols)))
                << "row " << r;
    }
}

// ---------------------------------------------------------------------------------------------
// launch_normalize_rows, launch_row_means

struct Normalized {
    std::vector<float> x;
    std::vector<std::uint8_t> zero_row;
    std::vector<std::uint8_t> finite_norm;
    long long bad_row;
};

// The contract, with engine::normalize_row for every valid row.
Normalized host_normalize(const Table& t, const std::vector<std::uint8_t>& valid,
                          const double* center, long long row0, long long bad_row) {
    Normalized out{t.x, std::vector<std::uint8_t>(t.rows, 0), std::vector<std::uint8_t>(t.rows, 1),
                   bad_row};
    for (std::int64_t r = 0; r < t.rows; ++r) {
        float* dst = out.x.data() + r * t.ld;
        if (!valid[r]) {
            std::fill_n(dst, t.cols, 0.0f);
            continue;
        }
        const double norm = engine::normalize_row(t.row(r), center, t.cols, dst);
        if (!std::isfinite(norm)) {
            out.finite_norm[r] = 0;
            out.bad_row = std::max(out.bad_row, row0 + r);
        }
        out.zero_row[r] = norm > 0.0 ? 0 : 1;  // NaN too (the header's rule)
    }
    return out;
}

TEST(EmulatedNormalizeRows, MatchEngineNormalizeRowBitForBitInEveryThreadOrder) {
    ScheduleGuard guard;
    std::mt19937 rng(301);
    const std::int64_t rows = 50, cols = 70, ld = 75;
    const long long row0 = 1000;
    const std::vector<double> general_center = random_doubles(cols, rng);
    std::vector<double> float_center(cols);
    for (std::int64_t c = 0; c < cols; ++c)
        float_center[c] = static_cast<float>(general_center[c] * 3.0);
    using Center = const std::vector<double>*;
    for (Center center : {Center{nullptr}, Center{&float_center}, Center{&general_center}}) {
        SCOPED_TRACE(center == nullptr           ? "no center"
                     : center == &general_center ? "general center"
                                                 : "float-valued center");
        const double* cp = center ? center->data() : nullptr;
        Table t = wide_table(rows, cols, ld, rng);
        std::vector<std::uint8_t> valid = random_valid(rows, rng, 0.2);
        valid[0] = valid[1] = valid[2] = valid[3] = 1;
        valid[40] = 0;
        // Row 0 equals the center's float32 rounding: a zero row unless the center has more
        // bits, and then its tiny differences are normalised like any others.
        for (std::int64_t c = 0; c < cols; ++c)
            t.at(0, c) = center ? static_cast<float>((*center)[c]) : 0.0f;
        std::fill_n(t.row(1), cols, 1e30f);
        t.at(2, 5) = kNaN;
        t.at(3, cols - 1) = kInf;
        poison_invalid_rows(t, valid);  // row 40: non-finite but invalid, so never a bad row
        const Normalized want = host_normalize(t, valid, cp, row0, -1);
        ASSERT_EQ(want.zero_row[0], center == &general_center ? 0 : 1);
        ASSERT_EQ(want.bad_row, row0 + 3);
        for (emu::Schedule order : kOrders) {
            SCOPED_TRACE("schedule " + std::to_string(static_cast<int>(order)));
            emu::set_schedule(order, 23);
            std::vector<float> x = t.x;
            std::vector<std::uint8_t> zero_row(rows, 9);
            long long bad_row = -1;
            kn::launch_normalize_rows(x.data(), rows, cols, ld, valid.data(), cp, zero_row.data(),
                                      row0, &bad_row, nullptr);
            expect_same_bits(x, want.x, "rows");  // the NaN padding included
            for (std::int64_t r = 0; r < rows; ++r)
                EXPECT_EQ(zero_row[r], want.zero_row[r]) << "row " << r;
            EXPECT_EQ(bad_row, want.bad_row);
        }
    }

    // bad_row is a running maximum over launches: a larger row from an earlier block stays.
    Table t = wide_table(8, 3, 3, rng);
    t.at(6, 1) = kNaN;
    const std::vector<std::uint8_t> valid(8, 1);
    std::vector<std::uint8_t> zero_row(8);
    for (long long before : {-1LL, 50LL, 5000LL}) {
        std::vector<float> x = t.x;
        long long bad_row = before;
        kn::launch_normalize_rows(x.data(), 8, 3, 3, valid.data(), nullptr, zero_row.data(), 100,
                                  &bad_row, nullptr);
        EXPECT_EQ(bad_row, std::max(before, 106LL));
    }
}

// A float32 result seldom shows the last bits of the float64 norm or dot behind it: it moves to
// the next float only when the float64 quotient lies within an ulp or so of a float32 rounding
// midpoint. The cases below are made to lie there, by a scan over one free float64 input (a
// center coordinate, an entry of S): the float moves when the norm or dot, or the float64
// quotient, is one ulp off (up for half the cases, down for the others), so a kernel that rounds
// once differently (a fused multiply-add, another order, a reciprocal) is caught.
template <class Flips>
bool keep_near_midpoint_case(Flips flips, int& gains, int& loses, int per_direction) {
    if (gains < per_direction && flips(kInf)) return ++gains, true;
    if (loses < per_direction && flips(-kInf)) return ++loses, true;
    return false;
}

// A float32 value f in [0.3, 0.9] and the float64 midpoint between f and the next float.
double float_midpoint(std::mt19937& rng) {
    const float f = std::uniform_real_distribution<float>(0.3f, 0.9f)(rng);
    return f + 0.5 * (static_cast<double>(std::nextafter(f, 2.0f)) - f);
}

TEST(EmulatedNormalizeRows, QuotientsNearARoundingMidpointShowTheNormToItsLastBit) {
    std::mt19937 rng(302);
    const std::int64_t cols = 37, ld = 40;
    const int per_direction = 16;
    int gains = 0, loses = 0, cases = 0;
    // Row 0 is zero, so v = -center exactly: center[0] sets v[0] / ||v|| to any float64.
    std::vector<float> x(ld, 0.0f), want(ld, 0.0f), got(ld);
    while (gains < per_direction || loses < per_direction) {
        ASSERT_LT(++cases, 1000) << "no case found near a midpoint";
        std::vector<double> center = random_doubles(cols, rng);
        double rest = 0.0;
        for (std::int64_t c = 1; c < cols; ++c) rest += center[c] * center[c];
        const double m = float_midpoint(rng);
        // v[0] for a quotient at the midpoint, then a scan up from a few dozen ulps below it.
        double v0 = m * std::sqrt(rest / (1.0 - m * m)) * (1.0 - 0x1p-47);
        for (int step = 0; step < 128; ++step, v0 = std::nextafter(v0, kInf)) {
            center[0] = -v0;
            const double norm = engine::normalize_row(x.data(), center.data(), cols, want.data());
            // A norm one ulp up (down) moves the float, and so does a quotient one ulp down (up).
            const float q = static_cast<float>(v0 / norm);
            const auto flips = [&](double away) {
                return q != static_cast<float>(v0 / std::nextafter(norm, away)) &&
                       q != static_cast<float>(std::nextafter(v0 / norm, -away));
            };
            if (!keep_near_midpoint_case(flips, gains, loses, per_direction)) continue;
            SCOPED_TRACE("center[0] = " + hex(center[0]));
            got = x;
            const std::uint8_t valid = 1;
            std::uint8_t zero_row = 9;
            long long bad_row = -1;
            kn::launch_normalize_rows(got.data(), 1, cols, ld, &valid, center.data(), &zero_row, 0,
                                      &bad_row, nullptr);
            expect_same_bits(got, want, "row");
            EXPECT_EQ(zero_row, 0);
            EXPECT_EQ(bad_row, -1);
            break;
        }
    }
}

TEST(EmulatedRowMeans, MatchTheHostRowMeanIdentityBitForBit) {
    std::mt19937 rng(401);
    const std::int64_t rows = 45, cols = 70, ld = 73;
    const Table raw = wide_table(rows, cols, ld, rng);
    std::vector<std::uint8_t> valid = random_valid(rows, rng, 0.2);
    valid[0] = 1;
    // The kernel's input as the engine makes it: rows normalised on the host, row 0 a zero row,
    // invalid rows NaN (never read); S the float64 sum of the normalised valid rows.
    Table xn = raw;
    std::fill_n(xn.row(0), cols, 0.0f);
    std::vector<std::uint8_t> zero_row(rows, 0);
    std::vector<double> sum(cols, 0.0);
    std::int64_t n_valid = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
        if (!valid[r]) {
            std::fill_n(xn.row(r), cols, kNaN);
            continue;
        }
        std::vector<float> row(xn.row(r), xn.row(r) + cols);
        zero_row[r] = engine::normalize_row(row.data(), nullptr, cols, xn.row(r)) > 0.0 ? 0 : 1;
        for (std::int64_t c = 0; c < cols; ++c) sum[c] += xn.at(r, c);
        ++n_valid;
    }
    ASSERT_EQ(zero_row[0], 1);
    for (std::int64_t n : {n_valid, std::int64_t{1}, std::int64_t{0}}) {
        SCOPED_TRACE("n_valid " + std::to_string(n));
        std::vector<float> out(rows, -2.0f);
        kn::launch_row_means(xn.x.data(), rows, cols, ld, valid.data(), zero_row.data(), sum.data(),
                             n, out.data(), nullptr);
        for (std::int64_t r = 0; r < rows; ++r) {
            if (!valid[r] || n < 2) {
                EXPECT_TRUE(std::isnan(out[r])) << "row " << r << ": " << out[r];
                continue;
            }
            const float want = static_cast<float>(engine::row_mean_identity(
                engine::dot_with_sum(xn.row(r), sum.data(), cols), zero_row[r] != 0, n));
            EXPECT_EQ(bits(out[r]), bits(want))
                << "row " << r << ": " << hex(out[r]) << ", want " << hex(want);
        }
    }
}

TEST(EmulatedRowMeans, MeansNearARoundingMidpointShowTheDotToItsLastBit) {
    std::mt19937 rng(402);
    const std::int64_t cols = 37;
    const int per_direction = 16;
    std::uniform_int_distribution<std::int64_t> valid_count(3, 5000);
    int gains = 0, loses = 0, cases = 0;
    while (gains < per_direction || loses < per_direction) {
        ASSERT_LT(++cases, 1000) << "no case found near a midpoint";
        const std::int64_t n_valid = valid_count(rng);
        Table raw = wide_table(1, cols, cols + 2, rng);
        raw.at(0, 0) = 1e7f;  // the largest entry, so S[0] steers the dot finely
        std::vector<float> xn(cols + 2, kNaN);
        ASSERT_GT(engine::normalize_row(raw.row(0), nullptr, cols, xn.data()), 0.0);
        // S of the size n_valid rows give it: each product then rounds near the dot's last bit,
        // where a fused multiply-add or another order differs.
        std::vector<double> sum = random_doubles(cols, rng, static_cast<double>(n_valid));
        // S[0] for a mean at the midpoint, then a scan up from a few dozen ulps below it.
        const double target = float_midpoint(rng) * static_cast<double>(n_valid - 1) + 1.0;
        double rest = 0.0;
        for (std::int64_t c = 1; c < cols; ++c) rest += static_cast<double>(xn[c]) * sum[c];
        const double s0 = (target - rest) / xn[0];
        sum[0] = s0 - std::fabs(s0) * 0x1p-47;
        for (int step = 0; step < 128; ++step, sum[0] = std::nextafter(sum[0], kInf)) {
            const double dot = engine::dot_with_sum(xn.data(), sum.data(), cols);
            // A dot one ulp away moves the float, and so does the quotient one ulp away.
            const double mean = engine::row_mean_identity(dot, false, n_valid);
            const float want = static_cast<float>(mean);
            const auto flips = [&](double away) {
                return want != static_cast<float>(engine::row_mean_identity(
                                   std::nextafter(dot, away), false, n_valid)) &&
                       want != static_cast<float>(std::nextafter(mean, away));
            };
            if (!keep_near_midpoint_case(flips, gains, loses, per_direction)) continue;
            const std::uint8_t valid = 1, zero_row = 0;
            float out = -2.0f;
            kn::launch_row_means(xn.data(), 1, cols, cols + 2, &valid, &zero_row, sum.data(),
                                 n_valid, &out, nullptr);
            EXPECT_EQ(bits(out), bits(want)) << hex(out) << ", want " << hex(want);
            break;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// launch_convert_rows, launch_bf16_to_fp16, launch_exact16_check

// v rounded to the nearest value of a binary format with p significant bits, smallest normal
// exponent emin and largest finite value max_finite: ties to even, gradual underflow, overflow
// to infinity. Written from the definition (v scaled by its binade's quantum, then nearbyint, in
// float64 where all of it is exact), so it shares nothing with the shim's bit tricks or
// _Float16.
double round_to_format(float v, int p, int emin, double max_finite) {
    if (!std::isfinite(v) || v == 0.0f) return v;
    const double a = std::fabs(static_cast<double>(v));
    const double quantum = std::ldexp(1.0, std::max(std::ilogb(a), emin) - (p - 1));
    double r = std::nearbyint(a / quantum) * quantum;
    if (r > max_finite) r = std::numeric_limits<double>::infinity();
    return std::copysign(r, static_cast<double>(v));
}
double round_bf16(float v) { return round_to_format(v, 8, -126, 0x1.FEp127); }
double round_fp16(float v) { return round_to_format(v, 11, -14, 65504.0); }

// The same value with the same sign (-0 is not +0), or NaN for NaN.
bool same_value(double got, double want) {
    if (std::isnan(want)) return std::isnan(got);
    return got == want && std::signbit(got) == std::signbit(want);
}

// Finite values at the two formats' rounding edges: exact midpoints with an even and an odd
// neighbour below, one below and above them, the subnormal ranges, overflow, signed zeros.
std::vector<float> rounding_edge_values() {
    std::vector<float> v = {0.0f,
                            -0.0f,
                            65504.0f,
                            65519.0f,
                            65520.0f,
                            -65520.0f,
                            65536.0f,
                            1e5f,
                            std::numeric_limits<float>::max(),
                            -std::numeric_limits<float>::max(),
                            from_bits(0x7F7F7FFFu),
                            std::numeric_limits<float>::min(),
                            std::numeric_limits<float>::denorm_min(),
                            from_bits(0x00008000u),
                            from_bits(0x00018000u),
                            from_bits(0x0000FFFFu),
                            0x1p-14f,
                            0x1p-24f,
                            0x1p-25f,
                            0x1p-26f,
                            0x3p-26f,
                            0x3FFp-24f,
                            0x7FFp-25f};
    for (std::uint32_t hi : {0x3F80u, 0x3F81u, 0xC2F6u, 0x0081u})
        for (std::uint32_t lo : {0x7FFFu, 0x8000u, 0x8001u}) v.push_back(from_bits(hi << 16 | lo));
    for (int e : {-14, -3, 0, 7, 15})
        for (int m : {0, 1, 2, 1022, 1023})
            v.push_back(std::ldexp(static_cast<float>(2 * (1024 + m) + 1), e - 11));
    for (int m : {0, 1, 2, 3, 1022}) v.push_back(std::ldexp(static_cast<float>(2 * m + 1), -25));
    return v;
}

TEST(EmulatedConvertRows, RoundToNearestEvenAndInverseNorms) {
    std::mt19937 rng(501);
    const std::int64_t rows = 20, cols = 70, ld = 75, ld_out = 73;
    Table t = wide_table(rows, cols, ld, rng);
    std::fill_n(t.row(0), cols, 0.0f);
    t.at(0, 3) = -0.0f;
    t.at(1, 0) = kInf;
    t.at(1, 1) = -kInf;
    t.at(1, 2) = kNaN;
    const std::vector<float> edges = rounding_edge_values();
    ASSERT_LE(edges.size(), static_cast<std::size_t>(2 * cols));
    for (std::size_t e = 0; e < edges.size(); ++e) t.at(2 + e / cols, e % cols) = edges[e];
    std::vector<std::uint8_t> valid = random_valid(rows, rng, 0.25);
    std::fill_n(valid.begin(), 4, 1);
    valid[7] = 0;
    poison_invalid_rows(t, valid);

    for (kn::Half16 fmt : {kn::Half16::kBf16, kn::Half16::kFp16}) {
        const bool bf = fmt == kn::Half16::kBf16;
        for (bool masked : {true, false}) {
            SCOPED_TRACE(std::string(bf ? "bf16" : "fp16") + (masked ? ", masked" : ", no mask"));
            std::vector<std::uint16_t> out(static_cast<std::size_t>(rows * ld_out), 0xBEEF);
            std::vector<double> inv_norm(rows, -1.0);
            kn::launch_convert_rows(t.x.data(), rows, cols, ld, masked ? valid.data() : nullptr,
                                    fmt, out.data(), ld_out, inv_norm.data(), nullptr);
            for (std::int64_t r = 0; r < rows; ++r) {
                const bool keep = !masked || valid[r];
                for (std::int64_t c = 0; c < ld_out; ++c) {
                    const std::uint16_t got = out[r * ld_out + c];
                    if (c >= cols) {
                        ASSERT_EQ(got, 0xBEEF) << "padding at " << r << "," << c;
                    } else if (!keep) {
                        ASSERT_EQ(got, 0) << "dropped row " << r << ", col " << c;
                    } else {
                        const float v = t.at(r, c);
                        const double want = bf ? round_bf16(v) : round_fp16(v);
                        const double value = bf ? bf16_value(got) : fp16_value(got);
                        ASSERT_TRUE(same_value(value, want))
                            << r << "," << c << ": " << hex(v) << " became " << hex(value)
                            << ", want " << hex(want);
                    }
                }
                if (!keep || r == 0) {
                    EXPECT_EQ(bits(inv_norm[r]), bits(0.0)) << "row " << r;
                } else if (t.row_finite(r)) {
                    // A float64 sum of squares in the kernel's order, a square root and a
                    // reciprocal: relative error <= (cols + 3) 2^-53, under 1e-14.
                    long double s = 0.0L;
                    for (std::int64_t c = 0; c < cols; ++c)
                        s += static_cast<long double>(t.at(r, c)) * t.at(r, c);
                    const double exact = static_cast<double>(1.0L / std::sqrt(s));
                    EXPECT_NEAR(inv_norm[r], exact, 1e-13 * exact) << "row " << r;
                }
            }
            if (masked) {
                // Without inv_norm the rows convert the same.
                std::vector<std::uint16_t> alone(out.size(), 0xBEEF);
                kn::launch_convert_rows(t.x.data(), rows, cols, ld, valid.data(), fmt, alone.data(),
                                        ld_out, nullptr, nullptr);
                EXPECT_EQ(alone, out);
            }
        }
    }
}

TEST(EmulatedConvertRows, Bf16ToFp16KeepsEveryValueBothFormatsHold) {
    // Every float16 value that is also a bfloat16 value (normal, subnormal, zero, infinite), by
    // its float16 bits.
    std::vector<std::uint16_t> shared;
    for (unsigned b = 0; b < 65536; ++b) {
        const double v = fp16_value(static_cast<std::uint16_t>(b));
        if (!std::isnan(v) && (bits(static_cast<float>(v)) & 0xFFFFu) == 0)
            shared.push_back(static_cast<std::uint16_t>(b));
    }
    ASSERT_GT(shared.size(), 8000u);
    std::mt19937 rng(502);
    std::shuffle(shared.begin(), shared.end(), rng);
    const std::int64_t count = static_cast<std::int64_t>(shared.size());
    std::vector<std::uint16_t> p(shared.size() + 8, 0x1234);
    for (std::int64_t e = 0; e < count; ++e)
        p[e] = static_cast<std::uint16_t>(bits(static_cast<float>(fp16_value(shared[e]))) >> 16);
    kn::launch_bf16_to_fp16(p.data(), count, nullptr);
    for (std::int64_t e = 0; e < count; ++e)
        ASSERT_EQ(p[e], shared[e]) << "value " << hex(fp16_value(shared[e]));
    for (std::size_t e = shared.size(); e < p.size(); ++e) EXPECT_EQ(p[e], 0x1234) << e;
}

// The header's rule for one element, from the definitions: kNotBf16Exact unless v is a bfloat16
// value (low 16 bits zero, not NaN) that is 0 or within engine's raw bfloat16 range;
// kNotFp16Exact unless v is a float16 value.
unsigned exact16_flags(float v) {
    unsigned f = 0;
    const double a = std::fabs(static_cast<double>(v));
    if (std::isnan(v) || (bits(v) & 0xFFFFu) != 0 ||
        (a != 0.0 && (a < engine::kRawBf16MinMagnitude || a > engine::kRawBf16MaxMagnitude)))
        f |= kn::kNotBf16Exact;
    if (!(round_fp16(v) == v)) f |= kn::kNotFp16Exact;
    return f;
}

TEST(EmulatedExact16Check, FlagsValidRowsHoldingValuesOutsideEachFormat) {
    std::mt19937 rng(601);
    const std::int64_t rows = 21, cols = 45, ld = 50;
    // k 2^e with |k| < 256 and -24 <= e <= 7: values of both formats (float16 subnormals
    // included), inside the bfloat16 range.
    Table t{rows, cols, ld, std::vector<float>(static_cast<std::size_t>(rows * ld), kNaN)};
    std::uniform_int_distribution<int> k(-255, 255), e(-24, 7);
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c)
            t.at(r, c) = std::ldexp(static_cast<float>(k(rng)), e(rng));
    std::vector<std::uint8_t> valid = random_valid(rows, rng, 0.25);
    valid[3] = 0;
    valid[rows - 1] = 1;
    poison_invalid_rows(t, valid);  // NaN, which would set both bits if read
    std::vector<std::int64_t> valid_rows;
    for (std::int64_t r = 0; r < rows; ++r) {
        if (!valid[r]) continue;
        valid_rows.push_back(r);
        for (std::int64_t c = 0; c < cols; ++c) ASSERT_EQ(exact16_flags(t.at(r, c)), 0u);
    }
    for (unsigned before : {0u, kBothFlags}) {
        unsigned flags = before;
        kn::launch_exact16_check(t.x.data(), rows, cols, ld, valid.data(), &flags, nullptr);
        EXPECT_EQ(flags, before) << "a table of exact values";
    }

    struct Case {
        float v;
        unsigned want;
    };
    const Case cases[] = {
        {1.0f + 0x1p-10f, kn::kNotBf16Exact},  // 11 significant bits
        {1.0f + 0x1p-7f, 0},
        {65504.0f, kn::kNotBf16Exact},
        {65536.0f, kn::kNotFp16Exact},  // float16 overflows
        {0x1p-25f, kn::kNotFp16Exact},  // half the smallest float16 subnormal
        {0x3p-24f, 0},                  // float16 subnormals are float16 values
        {-0x1p-24f, 0},
        {0x1p-60f, kn::kNotFp16Exact},  // the bfloat16 range's ends are inside it
        {-0x1p-60f, kn::kNotFp16Exact},
        {0x1p-61f, kBothFlags},
        {0x1p-130f, kBothFlags},  // a bfloat16 subnormal, far below the range
        {0x1p50f, kn::kNotFp16Exact},
        {-0x1.8p50f, kBothFlags},
        {0x1p51f, kBothFlags},
        {kInf, kn::kNotBf16Exact},  // a float16 value, outside the bfloat16 range
        {-kInf, kn::kNotBf16Exact},
        {kNaN, kBothFlags},
        {-0.0f, 0},
    };
    std::size_t i = 0;
    for (const Case& tc : cases) {
        SCOPED_TRACE(hex(tc.v));
        ASSERT_EQ(exact16_flags(tc.v), tc.want) << "the test's own rule";
        // The first case at the last element of the last row, the others anywhere valid.
        const std::int64_t r = i == 0 ? rows - 1 : valid_rows[(i * 5) % valid_rows.size()];
        const std::int64_t c = i == 0 ? cols - 1 : static_cast<std::int64_t>((i * 7) % cols);
        ++i;
        Table u = t;
        u.at(r, c) = tc.v;
        unsigned flags = 0;
        kn::launch_exact16_check(u.x.data(), rows, cols, ld, valid.data(), &flags, nullptr);
        EXPECT_EQ(flags, tc.want) << "at " << r << "," << c;
        // Bits are only ever set: a bit already in the word stays.
        const unsigned before = kBothFlags & ~tc.want;
        flags = before;
        kn::launch_exact16_check(u.x.data(), rows, cols, ld, valid.data(), &flags, nullptr);
        EXPECT_EQ(flags, before | tc.want);
    }
}

// ---------------------------------------------------------------------------------------------
// launch_rows_to_shifted_double

TEST(EmulatedRowsToShiftedDouble, ShiftedRowsAndRowOrderSumsMatchTheHostBitForBit) {
    std::mt19937 rng(701);
    for (const Shape s : {Shape{61, 130, 133}, Shape{5, 1, 3}}) {
        Table t = wide_table(s.rows, s.cols, s.ld, rng);
        const std::vector<std::uint8_t> mask = random_valid(s.rows, rng, 0.2);
        poison_invalid_rows(t, mask);  // never read, says the header
        const std::vector<double> shift = random_doubles(s.cols, rng);
        const std::vector<double> start = random_doubles(s.cols, rng, 1e3);
        std::vector<double> want_y(static_cast<std::size_t>(s.rows * s.cols), 0.0);
        std::vector<double> want_sums = start;
        for (std::int64_t r = 0; r < s.rows; ++r)
            if (mask[r])
                for (std::int64_t c = 0; c < s.cols; ++c) {
                    const double v = static_cast<double>(t.at(r, c)) - shift[c];
                    want_y[r * s.cols + c] = v;
                    want_sums[c] += v;
                }
        for (std::int64_t split : {s.rows, std::int64_t{1}, s.rows / 2 + 1}) {
            SCOPED_TRACE("cols " + std::to_string(s.cols) + ", split at " + std::to_string(split));
            std::vector<double> y(want_y.size(), -7.0), sums = start;
            kn::launch_rows_to_shifted_double(t.x.data(), split, s.cols, s.ld, shift.data(),
                                              mask.data(), y.data(), sums.data(), nullptr);
            kn::launch_rows_to_shifted_double(t.row(split), s.rows - split, s.cols, s.ld,
                                              shift.data(), mask.data() + split,
                                              y.data() + split * s.cols, sums.data(), nullptr);
            expect_same_bits(y, want_y, "y");
            expect_same_bits(sums, want_sums, "sums");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// launch_projection_rows

TEST(EmulatedProjectionRows, ValidRowsAreCentredAndHashedByTheirRawBits) {
    std::mt19937 rng(801);
    const std::int64_t rows = 40, cols = 70, ld = 75;
    Table t = wide_table(rows, cols, ld, rng);
    std::vector<std::uint8_t> valid = random_valid(rows, rng, 0.2);
    for (std::int64_t r : {5, 11, 20, 21}) valid[r] = 1;
    valid[30] = 0;
    std::copy_n(t.row(11), cols, t.row(5));
    std::copy_n(t.row(11), cols, t.row(20));
    std::copy_n(t.row(11), cols, t.row(21));
    t.at(20, cols - 1) = std::nextafter(t.at(20, cols - 1), kInf);  // differ in one bit
    t.at(21, 0) = std::nextafter(t.at(21, 0), kInf);
    poison_invalid_rows(t, valid);
    const std::vector<double> center = random_doubles(cols, rng);

    std::vector<std::vector<std::uint64_t>> hashes;
    for (const double* cp : {center.data(), static_cast<const double*>(nullptr)}) {
        SCOPED_TRACE(cp ? "centred" : "no center");
        Table u = t;
        std::vector<std::uint64_t> hash(rows, 77);
        kn::launch_projection_rows(u.x.data(), rows, cols, ld, valid.data(), cp, hash.data(),
                                   nullptr);
        std::vector<float> want = t.x;
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = 0; c < cols; ++c) {
                float& w = want[r * ld + c];
                if (!valid[r])
                    w = 0.0f;
                else if (cp)
                    w = static_cast<float>(static_cast<double>(w) - cp[c]);
            }
        expect_same_bits(u.x, want, "rows");
        for (std::int64_t r = 0; r < rows; ++r)
            if (!valid[r]) {
                EXPECT_EQ(hash[r], 0u) << "invalid row " << r;
            }
        hashes.push_back(hash);
    }
    const std::vector<std::uint64_t>& hash = hashes[0];
    EXPECT_EQ(hashes[1], hash) << "the hash is of the raw rows, before centring";
    // Equal rows hash equally; any two different rows of these few colliding in 64 bits would be
    // a ~2^-54 chance, so a collision means the hash skips part of a row (rows 20 and 21 differ
    // from row 11 in the last and the first element).
    for (std::int64_t a = 0; a < rows; ++a)
        for (std::int64_t b = a + 1; b < rows; ++b) {
            if (!valid[a] || !valid[b]) continue;
            const bool equal = std::memcmp(t.row(a), t.row(b), cols * sizeof(float)) == 0;
            EXPECT_EQ(hash[a] == hash[b], equal) << "rows " << a << " and " << b;
        }
    EXPECT_EQ(hash[5], hash[11]);
    // Row 11 alone, at another leading dimension: the same hash.
    std::vector<float> alone(t.row(11), t.row(11) + cols);
    const std::uint8_t one = 1;
    std::uint64_t h = 0;
    kn::launch_projection_rows(alone.data(), 1, cols, cols, &one, nullptr, &h, nullptr);
    EXPECT_EQ(h, hash[11]);
}

// ---------------------------------------------------------------------------------------------
// launch_extremes_init, launch_direction_extremes

struct Extremes {
    std::vector<float> max_value, min_value;
    std::vector<std::int64_t> max_index, min_index;
};

// The CPU's fold (src/geometry/extremeness.cpp): rows in order, strict comparisons from
// (-inf, -1) and (+inf, -1).
Extremes host_extremes(const std::vector<float>& scores, std::int64_t ld, std::int64_t dirs,
                       std::int64_t rows, const std::vector<std::uint8_t>& valid) {
    Extremes e{std::vector<float>(dirs, -kInf), std::vector<float>(dirs, kInf),
               std::vector<std::int64_t>(dirs, -1), std::vector<std::int64_t>(dirs, -1)};
    for (std::int64_t q = 0; q < dirs; ++q)
        for (std::int64_t r = 0; r < rows; ++r) {
            if (!valid[r]) continue;
            const float v = scores[q * ld + r];
            if (v > e.max_value[q]) {
                e.max_value[q] = v;
                e.max_index[q] = r;
            }
            if (v < e.min_value[q]) {
                e.min_value[q] = v;
                e.min_index[q] = r;
            }
        }
    return e;
}

TEST(EmulatedDirectionExtremes, TilesFoldIntoTheHostExtremesInAnyOrder) {
    ScheduleGuard guard;
    std::mt19937 rng(901);
    const std::int64_t n = 300, dirs = 13, ld = n + 3, tile = 70;
    const std::vector<std::uint8_t> valid = random_valid(n, rng, 0.15);
    std::int64_t first_valid = 0;
    while (!valid[first_valid]) ++first_valid;
    // Scores on a grid of 1/16 (many ties); invalid rows hold +-100, which would win if read.
    std::vector<float> scores(static_cast<std::size_t>(dirs * ld), kNaN);
    std::uniform_int_distribution<int> step(-16, 16);
    std::bernoulli_distribution nan(0.05);
    for (std::int64_t q = 0; q < dirs; ++q)
        for (std::int64_t r = 0; r < n; ++r) {
            float& s = scores[q * ld + r];
            if (!valid[r])
                s = (q + r) % 2 ? 100.0f : -100.0f;
            else if (q == 11 || nan(rng))
                s = kNaN;  // direction 11: every valid score NaN
            else if (q == 12)
                s = -kInf;  // direction 12: every valid score -inf
            else
                s = static_cast<float>(step(rng)) / 16.0f;
        }
    scores[0 * ld + first_valid] = kNaN;  // NaN where a fold would start
    scores[10 * ld + n - 1] = valid[n - 1] ? kInf : scores[10 * ld + n - 1];
    scores[10 * ld + first_valid] = -kInf;
    const Extremes want = host_extremes(scores, ld, dirs, n, valid);
    ASSERT_EQ(want.max_index[11], -1);
    ASSERT_EQ(want.min_index[11], -1);
    ASSERT_EQ(want.max_index[12], -1);
    ASSERT_EQ(want.min_index[12], first_valid);

    // extremes_init empties count slots and nothing beyond.
    Extremes got{std::vector<float>(dirs + 1, 42.0f), std::vector<float>(dirs + 1, 42.0f),
                 std::vector<std::int64_t>(dirs + 1, 7), std::vector<std::int64_t>(dirs + 1, 7)};
    kn::launch_extremes_init(got.max_value.data(), got.max_index.data(), got.min_value.data(),
                             got.min_index.data(), dirs, nullptr);
    for (std::int64_t q = 0; q <= dirs; ++q) {
        const bool in = q < dirs;
        EXPECT_EQ(got.max_value[q], in ? -kInf : 42.0f) << q;
        EXPECT_EQ(got.min_value[q], in ? kInf : 42.0f) << q;
        EXPECT_EQ(got.max_index[q], in ? -1 : 7) << q;
        EXPECT_EQ(got.min_index[q], in ? -1 : 7) << q;
    }

    std::vector<std::int64_t> starts;
    for (std::int64_t r0 = 0; r0 < n; r0 += tile) starts.push_back(r0);
    for (emu::Schedule order : kOrders) {
        SCOPED_TRACE("schedule " + std::to_string(static_cast<int>(order)));
        emu::set_schedule(order, 29);
        Extremes e{std::vector<float>(dirs), std::vector<float>(dirs),
                   std::vector<std::int64_t>(dirs), std::vector<std::int64_t>(dirs)};
        kn::launch_extremes_init(e.max_value.data(), e.max_index.data(), e.min_value.data(),
                                 e.min_index.data(), dirs, nullptr);
        // Tiles forward in forward thread order, backwards otherwise.
        std::vector<std::int64_t> visit = starts;
        if (order != emu::Schedule::kForward) std::reverse(visit.begin(), visit.end());
        for (std::int64_t r0 : visit)
            kn::launch_direction_extremes(scores.data() + r0, ld, dirs, std::min(tile, n - r0), r0,
                                          valid.data() + r0, e.max_value.data(), e.max_index.data(),
                                          e.min_value.data(), e.min_index.data(), nullptr);
        expect_same_bits(e.max_value, want.max_value, "max_value");
        expect_same_bits(e.min_value, want.min_value, "min_value");
        EXPECT_EQ(e.max_index, want.max_index);
        EXPECT_EQ(e.min_index, want.min_index);
    }
}

}  // namespace
