#include "distances_to_point.cuh"
#include "kernel_utils.cuh"

namespace embgeom::kernels {
namespace {

__global__ void distances_to_point_kernel(const float* x, std::int64_t rows, std::int64_t cols,
                                          std::int64_t ld, const double* point, float* out) {
    const int lane = lane_id();
    for (std::int64_t r = global_warp(); r < rows; r += warp_stride()) {
        const float* row = x + r * ld;
        double s = 0.0;
        for (std::int64_t c = lane; c < cols; c += kWarp) {
            const double diff = static_cast<double>(row[c]) - point[c];
            s += diff * diff;
        }
        s = warp_sum(s);
        if (lane == 0) out[r] = static_cast<float>(sqrt(s));
    }
}

}  // namespace

void launch_distances_to_point(const float* x, std::int64_t rows, std::int64_t cols,
                               std::int64_t ld, const double* point, float* out,
                               cudaStream_t stream) {
    if (rows <= 0) return;
    distances_to_point_kernel<<<grid_for(rows, kWarpsPerBlock), kWarpBlock, 0, stream>>>(
        x, rows, cols, ld, point, out);
}

}  // namespace embgeom::kernels
