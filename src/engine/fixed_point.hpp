#pragma once
// Fixed-point forms of the per-pair sums of the all-pairs engine. Integer sums do not depend on
// the order of addition, so totals are bit-identical for any tiling, thread count or backend.
#include <cmath>
#include <cstdint>

namespace embgeom::engine {

/// cos^2 in units of 2^-24 (the float32 resolution near 1), rounded half up.
constexpr float kCosSqScale = 16777216.0f;
/// cos in units of 2^-32 (the per-row sums of the tiled pass).
constexpr double kCosScale = 4294967296.0;

/// round(c * c * 2^24). (c * c) is rounded once in float and the scaling by 2^24 is exact, so an
/// FMA contraction of the + 0.5f gives the same integer.
inline std::int32_t cos_sq_fixed(float c) {
    return static_cast<std::int32_t>((c * c) * kCosSqScale + 0.5f);
}

/// round(c * 2^32); exact for |c| >= 2^-9.
inline std::int64_t cos_fixed(float c) {
    return static_cast<std::int64_t>(std::llrint(static_cast<double>(c) * kCosScale));
}

}  // namespace embgeom::engine
