#pragma once
// __nv_bfloat16 for the kernel emulator: the top 16 bits of a float, rounded to nearest even;
// a NaN stays a (quiet) NaN, as with __float2bfloat16_rn on the device.
#include <cstdint>
#include <cstring>

struct __nv_bfloat16 {
    std::uint16_t bits;
};
inline __nv_bfloat16 __float2bfloat16_rn(float v) {
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return __nv_bfloat16{0x7fff};
    u += 0x7fffu + ((u >> 16) & 1u);
    return __nv_bfloat16{static_cast<std::uint16_t>(u >> 16)};
}
inline float __bfloat162float(__nv_bfloat16 v) {
    const std::uint32_t u = static_cast<std::uint32_t>(v.bits) << 16;
    float out;
    std::memcpy(&out, &u, 4);
    return out;
}
inline std::uint16_t __bfloat16_as_ushort(__nv_bfloat16 v) { return v.bits; }
inline __nv_bfloat16 __ushort_as_bfloat16(std::uint16_t v) { return __nv_bfloat16{v}; }
