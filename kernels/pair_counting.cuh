#pragma once
// Device helpers for counting the pairs of a tile (nvcc only), shared by the pair kernel
// (tile_pairs.cu) and the fold that counts pairs in the same read (tile_row_fold.cu), so both
// count with the same bits.
#include <cuda_runtime.h>

#include "embgeom/histogram_binning.hpp"

namespace embgeom::kernels {

constexpr float kCosSqScale = 16777216.0f;  // 2^24, engine::kCosSqScale

// engine::cos_sq_fixed: (c * c) rounded once in float, then an exact scaling, + 0.5f, truncated.
__device__ inline unsigned long long cos_sq_units(float c) {
    return static_cast<unsigned long long>(
        static_cast<int>(__fadd_rn(__fmul_rn(__fmul_rn(c, c), kCosSqScale), 0.5f)));
}

// One pair of cosine v into a histogram (the block's shared one when s_hist is not null) and
// a thread's running cos^2 sum and duplicate count.
__device__ inline void count_pair(float v, int bins, float scale, unsigned int* s_hist,
                                  unsigned long long* hist, float dup_min, unsigned long long& sq,
                                  long long& dups) {
    const int b = histogram_bin(v, scale, bins);
    if (s_hist)
        atomicAdd(&s_hist[b], 1u);
    else
        atomicAdd(&hist[b], 1ull);
    sq += cos_sq_units(v);
    if (v >= dup_min) ++dups;
}

}  // namespace embgeom::kernels
