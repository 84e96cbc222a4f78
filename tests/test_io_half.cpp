// The 16-bit float converters of src/io, checked exhaustively and against numpy.
#include <gtest/gtest.h>

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
