#pragma once
// Private to src/io: bit-exact conversions between float32 and the two 16-bit float formats we
// read and write (IEEE binary16, bfloat16). HDF5 1.10 has no
// predefined 16-bit float types, and its generic soft conversion is slow and does not round to
// nearest even, so table blocks are converted here.
#include <cstdint>
#include <cstring>

namespace embgeom::io {

inline float bits_to_float(std::uint32_t u) noexcept {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

inline std::uint32_t float_to_bits(float f) noexcept {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

/// IEEE binary16 -> float32, exact for every input (subnormals, +-0, +-inf, NaN payloads).
inline float half_to_float(std::uint16_t h) noexcept {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1fu;
    const std::uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (mant << 13));
    if (exp != 0) return bits_to_float(sign | ((exp + (127 - 15)) << 23) | (mant << 13));
    // Zero or subnormal: mant * 2^-24 is exact in float32 (mant < 2^10).
    const float mag = static_cast<float>(mant) * bits_to_float(0x33800000u);  // 2^-24
    return bits_to_float(sign | float_to_bits(mag));
}

/// bfloat16 is the upper half of a float32, so widening is a shift (exact, NaN payload kept).
inline float bfloat16_to_float(std::uint16_t b) noexcept {
    return bits_to_float(static_cast<std::uint32_t>(b) << 16);
}

/// float32 -> IEEE binary16 with round-to-nearest-even; overflow gives +-inf, NaN stays a (quiet)
/// NaN with the top of its payload, subnormal results are rounded correctly.
inline std::uint16_t float_to_half(float f) noexcept {
    std::uint32_t u = float_to_bits(f);
    const std::uint32_t sign = (u >> 16) & 0x8000u;
    u &= 0x7fffffffu;
    if (u >= 0x7f800000u) {
        if (u == 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7c00u);
        return static_cast<std::uint16_t>(sign | 0x7e00u | ((u >> 13) & 0x3ffu));
    }
    if (u >= 0x47800000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65536
    if (u < 0x38800000u) {
        // Below the smallest normal half (2^-14). Adding 0.5 (exponent 126) puts the result's
        // 10 mantissa bits at the bottom of the float, and the FPU's own round-to-nearest-even
        // does the rounding; subtracting 0.5's bits leaves the half's bit pattern.
        const float magic = bits_to_float(126u << 23);
        const std::uint32_t r = float_to_bits(bits_to_float(u) + magic) - (126u << 23);
        return static_cast<std::uint16_t>(sign | r);
    }
    // Normal: rebias the exponent and round the 13 dropped bits to nearest even. A carry out of
    // the mantissa correctly bumps the exponent (up to inf for values >= 65520).
    const std::uint32_t odd = (u >> 13) & 1u;
    u += (static_cast<std::uint32_t>(15 - 127) << 23) + 0xfffu + odd;
    return static_cast<std::uint16_t>(sign | (u >> 13));
}

/// float32 -> bfloat16 with round-to-nearest-even on the 16 dropped bits; overflow gives +-inf
/// (values from the midpoint between the largest bfloat16 and 2^128 up), subnormals round like
/// normals (same exponent range), NaN stays a quiet NaN with its sign and the top of its payload.
inline std::uint16_t float_to_bfloat16(float f) noexcept {
    const std::uint32_t u = float_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
    // A carry out of the mantissa bumps the exponent, up to inf; it cannot pass the sign bit.
    return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

}  // namespace embgeom::io
