#include <cmath>

#include "kernel_utils.cuh"
#include "row_norms.cuh"

namespace embgeom::kernels {
namespace {

__global__ void row_norms_kernel(const float* x, std::int64_t rows, std::int64_t cols,
                                 std::int64_t ld, float* norms, std::uint8_t* finite) {
    const int lane = lane_id();
    for (std::int64_t r = global_warp(); r < rows; r += warp_stride()) {
        const float* row = x + r * ld;
        double s = 0.0;
        bool ok = true;
        for (std::int64_t c = lane; c < cols; c += kWarp) {
            const float v = row[c];
            ok &= isfinite(v);
            s += static_cast<double>(v) * v;
        }
        ok = __all_sync(kFullMask, ok);
        s = warp_sum(s);
        if (lane == 0) {
            finite[r] = ok ? 1 : 0;
            norms[r] = ok ? static_cast<float>(sqrt(s)) : __int_as_float(0x7fc00000);
        }
    }
}

}  // namespace

void launch_row_norms(const float* x, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                      float* norms, std::uint8_t* finite, cudaStream_t stream) {
    if (rows <= 0) return;
    row_norms_kernel<<<grid_for(rows, kWarpsPerBlock), kWarpBlock, 0, stream>>>(x, rows, cols, ld,
                                                                                norms, finite);
}

}  // namespace embgeom::kernels
