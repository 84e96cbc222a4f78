#include "kernel_utils.cuh"
#include "tile_row_sums.cuh"

namespace embgeom::kernels {
namespace {

constexpr double kCosScale = 4294967296.0;  // 2^32, engine::kCosScale

__global__ void tile_row_sums_kernel(const float* tile, std::int64_t ld, std::int64_t rows,
                                     std::int64_t cols, std::int64_t row0, std::int64_t col0,
                                     const std::uint8_t* valid, long long* row_sums) {
    const int lane = lane_id();
    for (std::int64_t r = global_warp(); r < rows; r += warp_stride()) {
        const std::int64_t i = row0 + r;
        if (!valid[i]) continue;
        const float* row = tile + r * ld;
        long long s = 0;
        for (std::int64_t c = lane; c < cols; c += kWarp) {
            const std::int64_t j = col0 + c;
            // llrint in the default rounding mode == round to nearest even.
            if (j != i && valid[j]) s += __double2ll_rn(static_cast<double>(row[c]) * kCosScale);
        }
        s = warp_sum(s);
        if (lane == 0) row_sums[i] += s;
    }
}

}  // namespace

void launch_tile_row_sums(const float* tile, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                          std::int64_t row0, std::int64_t col0, const std::uint8_t* valid,
                          long long* row_sums, cudaStream_t stream) {
    if (rows <= 0 || cols <= 0) return;
    tile_row_sums_kernel<<<grid_for(rows, kWarpsPerBlock), kWarpBlock, 0, stream>>>(
        tile, ld, rows, cols, row0, col0, valid, row_sums);
}

}  // namespace embgeom::kernels
