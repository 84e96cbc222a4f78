#pragma once
// Reference roundings to the 16-bit and tf32 formats, written independently of src/io's
// conversions so that tests can check them (and the GPU paths) against these.
#include <cstdint>
#include <cstring>

#include "io/half_float.hpp"

namespace embgeom::test {

inline std::uint32_t bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}
inline float from_bits(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}
/// Round to nearest even, as the bfloat16 writers and __float2bfloat16_rn do (finite inputs).
inline float round_bf16(float f) {
    const std::uint32_t u = bits(f);
    return from_bits((u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u);
}
inline float round_fp16(float f) { return io::half_to_float(io::float_to_half(f)); }
/// What the tensor cores may do to a float32 input in tf32 mode: keep 10 mantissa bits.
inline float truncate_tf32(float f) { return from_bits(bits(f) & 0xffffe000u); }

}  // namespace embgeom::test
