#pragma once
// Bit patterns and 16-bit formats from their definitions, for the kernel emulator's tests: they
// share nothing with the shim's conversions or src/io/half_float.hpp, which they check.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "support/float16_reference.hpp"  // bits(float), from_bits

namespace embgeom::test_formats {

using test::bits;
using test::from_bits;
inline std::uint64_t bits(double v) {
    std::uint64_t u;
    std::memcpy(&u, &v, sizeof u);
    return u;
}

/// The bfloat16 value of bit pattern b: the upper half of a float32.
inline double bf16_value(std::uint16_t b) { return from_bits(static_cast<std::uint32_t>(b) << 16); }

/// The float16 value of bit pattern b (sign, 5-bit exponent, 10-bit fraction, gradual
/// underflow), or NaN.
inline double fp16_value(std::uint16_t b) {
    const int e = (b >> 10) & 31, m = b & 1023;
    const double mag = e == 31  ? (m ? std::numeric_limits<double>::quiet_NaN()
                                     : std::numeric_limits<double>::infinity())
                       : e == 0 ? std::ldexp(m, -24)
                                : std::ldexp(1024 + m, e - 25);
    return (b & 0x8000) ? -mag : mag;
}

}  // namespace embgeom::test_formats
