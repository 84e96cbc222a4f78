#pragma once
// The one definition of which histogram bin a cosine falls in, shared by the CPU fold, the CUDA
// kernels and the tests, so that both backends count every pair in the same bin.
// Bins split [-1, 1] evenly; bin b is [edge_b, edge_{b+1}), the last bin also holds 1.0 exactly.
// Values below -1 or above 1 (float rounding of |cos| ~ 1) clamp into the end bins.
#include <cstdint>
#include <vector>

#if defined(__CUDACC__)
#define EMBGEOM_HOST_DEVICE __host__ __device__
#else
#define EMBGEOM_HOST_DEVICE
#endif

namespace embgeom {

/// Bin index of cosine c among `bins` even bins over [-1, 1]. scale must be 0.5f * bins.
/// The arithmetic is written as (c + 1) * scale in float on purpose: it has no a*b+c form a
/// compiler could contract into an FMA, so host and device give identical bins.
EMBGEOM_HOST_DEVICE inline int histogram_bin(float c, float scale, int bins) {
    const float t = (c + 1.0f) * scale;
    int b = static_cast<int>(t);                 // truncation == floor for t >= 0
    if (!(t >= 0.0f)) b = 0;                      // also catches NaN
    return b >= bins ? bins - 1 : b;
}

/// Edges [bins + 1] of the histogram, in float64, as written to /cosine/histogram/edges.
inline std::vector<double> histogram_edges(int bins) {
    std::vector<double> e(static_cast<std::size_t>(bins) + 1);
    for (int b = 0; b <= bins; ++b) e[b] = -1.0 + 2.0 * b / bins;
    return e;
}

}  // namespace embgeom
