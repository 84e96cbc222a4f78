#include "kernel_utils.cuh"
#include "projection_rows.cuh"

namespace embgeom::kernels {
namespace {

__device__ inline std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// Warp per row. The hash is a sum over columns of a mix of (column, bits): integer addition is
// associative, so the lanes' partial sums combine to the same value in any order.
__global__ void projection_rows_kernel(float* x, std::int64_t rows, std::int64_t cols,
                                       std::int64_t ld, const std::uint8_t* valid,
                                       const double* center, std::uint64_t* hash) {
    const int lane = lane_id();
    for (std::int64_t r = global_warp(); r < rows; r += warp_stride()) {
        float* row = x + r * ld;
        if (!valid[r]) {
            for (std::int64_t c = lane; c < cols; c += kWarp) row[c] = 0.0f;
            if (lane == 0) hash[r] = 0;
            continue;
        }
        std::uint64_t h = 0;
        for (std::int64_t c = lane; c < cols; c += kWarp) {
            const float v = row[c];
            h += splitmix64(static_cast<std::uint64_t>(c) << 32 |
                            static_cast<std::uint32_t>(__float_as_uint(v)));
            if (center) row[c] = __double2float_rn(__dsub_rn(static_cast<double>(v), center[c]));
        }
        h = warp_sum(h);
        if (lane == 0) hash[r] = splitmix64(h ^ static_cast<std::uint64_t>(cols));
    }
}

}  // namespace

void launch_projection_rows(float* x, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                            const std::uint8_t* valid, const double* center, std::uint64_t* hash,
                            cudaStream_t stream) {
    if (rows <= 0) return;
    projection_rows_kernel<<<grid_for(rows, kWarpsPerBlock), kWarpBlock, 0, stream>>>(
        x, rows, cols, ld, valid, center, hash);
}

}  // namespace embgeom::kernels
