// The 16-bit float converters of src/io, checked exhaustively, against an exact reference in
// double arithmetic, and against numpy.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "io/half_float.hpp"
#include "support/test_support.hpp"

namespace {

using embgeom::io::bfloat16_to_float;
using embgeom::io::bits_to_float;
using embgeom::io::float_to_bfloat16;
using embgeom::io::float_to_bits;
using embgeom::io::float_to_half;
using embgeom::io::half_to_float;
using namespace embgeom::test;

std::vector<std::uint32_t> read_u32(const std::string& path) {
    const std::string raw = read_text_file(path);
    std::vector<std::uint32_t> v(raw.size() / 4);
    std::memcpy(v.data(), raw.data(), v.size() * 4);
    return v;
}

std::vector<std::uint16_t> read_u16(const std::string& path) {
    const std::string raw = read_text_file(path);
    std::vector<std::uint16_t> v(raw.size() / 2);
    std::memcpy(v.data(), raw.data(), v.size() * 2);
    return v;
}

// Round-to-nearest-even onto a 16-bit float grid with `mant_bits` stored mantissa bits, least
// normal exponent `emin` and overflow threshold `inf_from` (the midpoint between the largest
// finite value and the next power of two, which ties to the even infinity), computed in double
// from the definition: the spacing in x's binade (subnormals share the least normal binade's) is
// a power of two, so x / spacing is exact and std::nearbyint rounds it to nearest even.
std::uint16_t reference_round(float f, int mant_bits, int emin, int bias, double inf_from) {
    const std::uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    const std::uint16_t exp_mask = static_cast<std::uint16_t>(0x7fff & ~((1 << mant_bits) - 1));
    const double x = std::fabs(static_cast<double>(f));
    if (x >= inf_from) return sign | exp_mask;
    int e = 0;
    std::frexp(x, &e);  // x in [2^(e-1), 2^e)
    const int binade = std::max(e - 1, emin);
    const double spacing = std::ldexp(1.0, binade - mant_bits);
    const double v = std::nearbyint(x / spacing) * spacing;
    if (v < std::ldexp(1.0, emin))  // zero or subnormal: the pattern is v in units of spacing
        return sign | static_cast<std::uint16_t>(v / std::ldexp(1.0, emin - mant_bits));
    std::frexp(v, &e);  // rounding up may have moved v into the next binade
    const double frac = std::ldexp(v, 1 - e) - 1.0;  // in [0, 1)
    return sign | static_cast<std::uint16_t>(((e - 1 + bias) << mant_bits) |
                                             static_cast<int>(std::ldexp(frac, mant_bits)));
}

std::uint16_t reference_half(float f) { return reference_round(f, 10, -14, 15, 65520.0); }

std::uint16_t reference_bfloat16(float f) {
    return reference_round(f, 7, -126, 127, std::ldexp(1.0, 128) - std::ldexp(1.0, 119));
}

// Every finite grid point's midpoint to the next one up (the ties), the floats just either side
// of it, both signs, and random floats over the whole range and near the grid's own range.
std::vector<float> rounding_inputs(float (*widen)(std::uint16_t), std::uint16_t largest,
                                   double above_largest, std::uint64_t seed) {
    std::vector<float> v;
    for (std::uint32_t b = 0; b <= largest; ++b) {
        const double lo = widen(static_cast<std::uint16_t>(b));
        const double hi = b == largest ? above_largest : widen(static_cast<std::uint16_t>(b + 1));
        const float mid = static_cast<float>((lo + hi) / 2);  // exact: one more mantissa bit
        for (float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY),
                        static_cast<float>(lo)}) {
            v.push_back(x);
            v.push_back(-x);
        }
    }
    std::mt19937_64 rng(seed);
    for (int i = 0; i < (1 << 20); ++i) {
        std::uint32_t u = static_cast<std::uint32_t>(rng());
        if (i & 1) u = (u & 0x807fffffu) | ((100u + (u >> 24) % 45u) << 23);
        if ((u & 0x7f800000u) != 0x7f800000u) v.push_back(bits_to_float(u));
    }
    return v;
}

TEST(IoHalf, FloatToHalfMatchesTheExactReference) {
    const std::vector<float> in = rounding_inputs(half_to_float, 0x7bff, 65536.0, fresh_seed());
    int mismatches = 0;
    for (std::size_t i = 0; i < in.size() && mismatches < 10; ++i)
        if (float_to_half(in[i]) != reference_half(in[i])) {
            ++mismatches;
            ADD_FAILURE() << "float bits " << std::hex << float_to_bits(in[i]) << ": ours "
                          << float_to_half(in[i]) << ", reference " << reference_half(in[i]);
        }
}

TEST(IoHalf, FloatToBFloat16MatchesTheExactReference) {
    const std::vector<float> in =
        rounding_inputs(bfloat16_to_float, 0x7f7f, std::ldexp(1.0, 128), fresh_seed());
    int mismatches = 0;
    for (std::size_t i = 0; i < in.size() && mismatches < 10; ++i)
        if (float_to_bfloat16(in[i]) != reference_bfloat16(in[i])) {
            ++mismatches;
            ADD_FAILURE() << "float bits " << std::hex << float_to_bits(in[i]) << ": ours "
                          << float_to_bfloat16(in[i]) << ", reference "
                          << reference_bfloat16(in[i]);
        }
}

TEST(IoHalf, BFloat16KnownValuesOverflowAndNaN) {
    EXPECT_EQ(float_to_bfloat16(1.0f), 0x3f80);
    EXPECT_EQ(float_to_bfloat16(-2.0f), 0xc000);
    EXPECT_EQ(float_to_bfloat16(bits_to_float(0x3f808000u)), 0x3f80);  // tie, even stays
    EXPECT_EQ(float_to_bfloat16(bits_to_float(0x3f818000u)), 0x3f82);  // tie, odd rounds up
    EXPECT_EQ(float_to_bfloat16(bits_to_float(0x3f808001u)), 0x3f81);
    EXPECT_EQ(float_to_bfloat16(bits_to_float(0x3f807fffu)), 0x3f80);
    EXPECT_EQ(float_to_bfloat16(bits_to_float(0x3fff8000u)), 0x4000);  // carry into the exponent
    EXPECT_EQ(float_to_bfloat16(bits_to_float(0x7f7f7fffu)), 0x7f7f);  // largest finite
    EXPECT_EQ(float_to_bfloat16(bits_to_float(0x7f7f8000u)), 0x7f80);  // tie to even: inf
    EXPECT_EQ(float_to_bfloat16(-FLT_MAX), 0xff80);
    EXPECT_EQ(float_to_bfloat16(INFINITY), 0x7f80);
    EXPECT_EQ(float_to_bfloat16(-0.0f), 0x8000);
    EXPECT_EQ(float_to_bfloat16(bits_to_float(0x00008000u)), 0x0000);  // subnormal tie to even
    EXPECT_EQ(float_to_bfloat16(bits_to_float(0x00018000u)), 0x0002);
    EXPECT_EQ(float_to_bfloat16(bits_to_float(0x007fc000u)), 0x0080);  // up to the least normal
    // A signalling NaN whose payload lies only in the dropped bits must not become inf.
    for (std::uint32_t nan : {0x7f800001u, 0xff800001u, 0x7fc00000u, 0x7fa00000u, 0xffffffffu}) {
        const std::uint16_t b = float_to_bfloat16(bits_to_float(nan));
        EXPECT_TRUE(std::isnan(bfloat16_to_float(b))) << std::hex << nan;
        EXPECT_EQ(b & 0x8000u, (nan >> 16) & 0x8000u) << std::hex << nan;
        EXPECT_EQ(b & 0x40u, 0x40u) << "quiet " << std::hex << nan;
    }
}

TEST(IoHalf, EveryBFloat16SurvivesARoundTrip) {
    for (std::uint32_t b = 0; b < 65536; ++b) {
        const float f = bfloat16_to_float(static_cast<std::uint16_t>(b));
        const bool nan = (b & 0x7f80u) == 0x7f80u && (b & 0x7fu) != 0;
        ASSERT_EQ(std::isnan(f), nan) << std::hex << b;
        EXPECT_EQ(float_to_bfloat16(f), nan ? (b | 0x40u) : b) << std::hex << b;
    }
}

TEST(IoHalf, EveryHalfSurvivesARoundTrip) {
    for (std::uint32_t h = 0; h < 65536; ++h) {
        const float f = half_to_float(static_cast<std::uint16_t>(h));
        const bool nan = (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0;
        ASSERT_EQ(std::isnan(f), nan) << std::hex << h;
        if (nan) {
            // Quiet NaNs come back bit for bit; signalling ones come back quietened.
            EXPECT_EQ(float_to_half(f), h | 0x200u) << std::hex << h;
        } else {
            EXPECT_EQ(float_to_half(f), h) << std::hex << h;
        }
    }
}

TEST(IoHalf, KnownValuesAndRounding) {
    EXPECT_EQ(half_to_float(0x3c00), 1.0f);
    EXPECT_EQ(half_to_float(0x7bff), 65504.0f);
    EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));
    EXPECT_EQ(half_to_float(0x03ff), 1023 * std::ldexp(1.0f, -24));
    EXPECT_EQ(float_to_bits(half_to_float(0x8000)), 0x80000000u);
    EXPECT_EQ(half_to_float(0xfc00), -INFINITY);
    EXPECT_EQ(float_to_half(65519.0f), 0x7bff);
    EXPECT_EQ(float_to_half(65520.0f), 0x7c00);  // halfway to 65536 rounds to even: inf
    EXPECT_EQ(float_to_half(-1e10f), 0xfc00);
    EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0);  // tie between 0 and the least subnormal
    EXPECT_EQ(float_to_half(std::ldexp(3.0f, -26)), 1);
    EXPECT_EQ(float_to_half(std::ldexp(3.0f, -25)), 2);              // 1.5 ulp ties to even (2)
    EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie to even
    EXPECT_EQ(float_to_half(1.0f + std::ldexp(3.0f, -11)), 0x3c02);
    EXPECT_EQ(float_to_half(std::ldexp(1023.5f, -24)), 0x0400);  // subnormal rounds up to normal
    EXPECT_EQ(bfloat16_to_float(0x3f80), 1.0f);
    EXPECT_EQ(bfloat16_to_float(0x0001), bits_to_float(0x00010000u));  // subnormal
    EXPECT_EQ(bfloat16_to_float(0xff80), -INFINITY);
    EXPECT_TRUE(std::isnan(bfloat16_to_float(0x7fc1)));
}

// numpy (C-level npy_half conversions, round-to-nearest-even) is the outside reference.
TEST(IoHalf, MatchesNumpyOnRandomAndEveryHalf) {
    TempDir dir;
    std::mt19937_64 rng(fresh_seed());
    std::vector<std::uint32_t> bits(1 << 20);
    for (auto& b : bits) {
        b = static_cast<std::uint32_t>(rng());
        // Half of the samples near the float16 range, where rounding decisions happen.
        if (b & 1u) b = (b & 0x807fffffu) | ((100u + (b >> 24) % 45u) << 23);
    }
    write_text_file(dir.file("in.u32"),
                    std::string(reinterpret_cast<const char*>(bits.data()), bits.size() * 4));
    run_python(R"(
import sys, numpy as np
d = sys.argv[1]
x = np.fromfile(d + '/in.u32', dtype='<u4').view('<f4')
x.astype('<f2').view('<u2').tofile(d + '/numpy.u16')
np.arange(65536, dtype='<u2').view('<f2').astype('<f4').view('<u4').tofile(d + '/widened.u32')
)",
               shell_quote(dir.path()));
    const std::vector<std::uint16_t> want = read_u16(dir.file("numpy.u16"));
    ASSERT_EQ(want.size(), bits.size());
    int mismatches = 0;
    for (std::size_t i = 0; i < bits.size() && mismatches < 10; ++i) {
        const float f = bits_to_float(bits[i]);
        const std::uint16_t got = float_to_half(f);
        if (std::isnan(f)) {
            EXPECT_TRUE(std::isnan(half_to_float(got)));
        } else if (got != want[i]) {
            ++mismatches;
            ADD_FAILURE() << "float bits " << std::hex << bits[i] << ": ours " << got << ", numpy "
                          << want[i];
        }
    }
    const std::vector<std::uint32_t> widened = read_u32(dir.file("widened.u32"));
    ASSERT_EQ(widened.size(), 65536u);
    for (std::uint32_t h = 0; h < 65536; ++h) {
        const float f = half_to_float(static_cast<std::uint16_t>(h));
        if (std::isnan(f))
            EXPECT_TRUE(std::isnan(bits_to_float(widened[h])));
        else
            EXPECT_EQ(float_to_bits(f), widened[h]) << std::hex << h;
    }
}

}  // namespace
