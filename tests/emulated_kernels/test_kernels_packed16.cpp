// kernels/packed16.cu on the kernel emulator, against the formats' definitions: packing keeps
// every bfloat16 and float16 value (NaN and infinity among bfloat16's, subnormals among both)
// and says when a value is not one; unpacking gives back the float32 bits that were packed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "format_definitions.hpp"
#include "kernel_emulator.hpp"
#include "packed16.cuh"

namespace {

namespace kn = embgeom::kernels;

using embgeom::test_formats::bits;
using embgeom::test_formats::from_bits;

// float16 values are float32 values: the definition's double narrows exactly.
float fp16_value(std::uint16_t b) {
    return static_cast<float>(embgeom::test_formats::fp16_value(b));
}

struct Packed {
    std::vector<std::uint16_t> out;
    unsigned inexact;
};

Packed pack(const std::vector<float>& x, kn::Half16 fmt, unsigned inexact_before = 0) {
    Packed p{std::vector<std::uint16_t>(x.size() + 4, 0xABCD), inexact_before};
    kn::launch_pack16(x.data(), static_cast<std::int64_t>(x.size()), fmt, p.out.data(), &p.inexact,
                      nullptr);
    return p;
}

std::vector<float> unpack(const std::vector<std::uint16_t>& in, std::int64_t count,
                          kn::Half16 fmt) {
    std::vector<float> out(static_cast<std::size_t>(count) + 4, -7.0f);
    kn::launch_unpack16(in.data(), count, fmt, out.data(), nullptr);
    return out;
}

TEST(EmulatedPacked16, EveryBfloat16PatternPacksToItselfAndBack) {
    std::vector<float> x;
    for (std::uint32_t b = 0; b < 65536; ++b) x.push_back(from_bits(b << 16));  // NaNs too
    const Packed p = pack(x, kn::Half16::kBf16);
    EXPECT_EQ(p.inexact, 0u);
    for (std::uint32_t b = 0; b < 65536; ++b) ASSERT_EQ(p.out[b], b) << b;
    for (std::size_t e = x.size(); e < p.out.size(); ++e) EXPECT_EQ(p.out[e], 0xABCD);
    const std::vector<float> back = unpack(p.out, 65536, kn::Half16::kBf16);
    for (std::uint32_t b = 0; b < 65536; ++b) ASSERT_EQ(bits(back[b]), b << 16) << b;
    EXPECT_EQ(back[65536], -7.0f);
}

TEST(EmulatedPacked16, EveryFloat16ValuePacksToItselfAndBack) {
    std::vector<float> x;
    std::vector<std::uint16_t> patterns;
    for (std::uint32_t b = 0; b < 65536; ++b) {
        const float v = fp16_value(static_cast<std::uint16_t>(b));
        if (std::isnan(v)) continue;  // float16 NaN bits are the format's own
        x.push_back(v);
        patterns.push_back(static_cast<std::uint16_t>(b));
    }
    ASSERT_EQ(x.size(), 65536u - 2 * 1023);
    const Packed p = pack(x, kn::Half16::kFp16);
    EXPECT_EQ(p.inexact, 0u);
    for (std::size_t e = 0; e < x.size(); ++e) ASSERT_EQ(p.out[e], patterns[e]) << e;
    const std::vector<float> back =
        unpack(p.out, static_cast<std::int64_t>(x.size()), kn::Half16::kFp16);
    for (std::size_t e = 0; e < x.size(); ++e) ASSERT_EQ(bits(back[e]), bits(x[e])) << e;
}

TEST(EmulatedPacked16, AValueOutsideTheFormatIsFlaggedWhereverItLies) {
    // 1: the format holds the value, 0: it does not, -1: either (float16's NaN bits are the
    // converter's own: the device's canonical NaN is not GCC's).
    struct Case {
        float v;
        int bf16_exact, fp16_exact;
    };
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const Case cases[] = {
        {1.0f + 0x1p-7f, 1, 1},
        {1.0f + 0x1p-8f, 0, 1},   // 9 significant bits
        {1.0f + 0x1p-11f, 0, 0},  // 12
        {65504.0f, 0, 1},         // float16's largest
        {65536.0f, 1, 0},         // beyond it
        {0x1p-24f, 1, 1},         // float16's smallest subnormal
        {0x1p-25f, 1, 0},         // below it
        {0x1p-130f, 1, 0},        // a float32 subnormal with bfloat16's bits
        {from_bits(0x00000001u), 0, 0},
        {-0.0f, 1, 1},
        {std::numeric_limits<float>::infinity(), 1, 1},
        {nan, 1, -1},                    // 0x7fc00000: bfloat16 bits
        {from_bits(0x7fc00001u), 0, 0},  // a NaN payload below bfloat16's bits
    };
    std::mt19937 rng(77);
    for (const Case& c : cases)
        for (const kn::Half16 fmt : {kn::Half16::kBf16, kn::Half16::kFp16}) {
            const int want = fmt == kn::Half16::kBf16 ? c.bf16_exact : c.fp16_exact;
            SCOPED_TRACE(testing::Message()
                         << std::hexfloat << c.v << " (" << std::hex << bits(c.v) << ") "
                         << (fmt == kn::Half16::kBf16 ? "bf16" : "fp16"));
            // Among exact values (multiples of 2^-3 below 2^5), at a random place past the first
            // warp, so the vote of a warp other than the first must reach the flag.
            std::vector<float> x(1000 + rng() % 3000);
            for (float& v : x) v = static_cast<float>(static_cast<int>(rng() % 256)) * 0.125f;
            const std::size_t at = 64 + rng() % (x.size() - 64);
            x[at] = c.v;
            const Packed p = pack(x, fmt);
            if (want >= 0) {
                EXPECT_EQ(p.inexact, want == 1 ? 0u : 1u);
            }
            if (p.inexact == 0) {
                const std::vector<float> back =
                    unpack(p.out, static_cast<std::int64_t>(x.size()), fmt);
                EXPECT_EQ(bits(back[at]), bits(c.v));
            }
            // A flag already set stays set.
            EXPECT_EQ(pack(x, fmt, 1).inexact, 1u);
        }
}

// The property the held table rests on: whenever the flag stays clear, unpacking gives every
// float32 bit pattern back, whatever the input (random bits: NaNs, subnormals, everything).
TEST(EmulatedPacked16, AClearFlagMeansEveryValueComesBackWithItsBits) {
    std::mt19937 rng(78);
    int clear = 0;
    for (int trial = 0; trial < 400; ++trial) {
        const kn::Half16 fmt = trial % 2 ? kn::Half16::kBf16 : kn::Half16::kFp16;
        std::vector<float> x(1 + rng() % 300);
        for (float& v : x) {
            const std::uint32_t r = static_cast<std::uint32_t>(rng());
            // Mostly values of the format, sometimes anything.
            v = rng() % 64 == 0 ? from_bits(r)
                : fmt == kn::Half16::kBf16
                    ? from_bits(r & 0xFFFF0000u)
                    : fp16_value(static_cast<std::uint16_t>(r & 0x7BFFu));  // never NaN
        }
        const Packed p = pack(x, fmt);
        if (p.inexact) continue;
        ++clear;
        const std::vector<float> back = unpack(p.out, static_cast<std::int64_t>(x.size()), fmt);
        for (std::size_t e = 0; e < x.size(); ++e) ASSERT_EQ(bits(back[e]), bits(x[e])) << e;
    }
    EXPECT_GT(clear, 50);
}

}  // namespace
