#pragma once
// __half for the kernel emulator: conversions through GCC's _Float16 (IEEE binary16, round to
// nearest even, subnormals kept: what __float2half_rn does on the device).
#include <cstdint>
#include <cstring>

struct __half {
    std::uint16_t bits;
};
inline __half __float2half_rn(float v) {
    const _Float16 h = static_cast<_Float16>(v);
    __half out;
    std::memcpy(&out.bits, &h, 2);
    return out;
}
inline float __half2float(__half v) {
    _Float16 h;
    std::memcpy(&h, &v.bits, 2);
    return static_cast<float>(h);
}
inline std::uint16_t __half_as_ushort(__half v) { return v.bits; }
inline __half __ushort_as_half(std::uint16_t v) { return __half{v}; }
