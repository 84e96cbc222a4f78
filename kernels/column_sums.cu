#include "column_sums.cuh"
#include "kernel_utils.cuh"

namespace embgeom::kernels {
namespace {

// Each column is one float64 sum in row order (bitwise the CPU's), so its additions form one
// chain; what can run in parallel is the loading. One thread per column looping over the rows was
// latency-bound (1.5 ms for 16384 x 768 on an H100, a third of a tf32 run's kernel time at that
// size). Here a block owns 32 columns: warps 1..7 stage kStageRows rows of them in shared memory
// (18 loads in flight per thread, coalesced across the 32 columns) while warp 0 adds the previous
// stage, one lane per column, in row order.
constexpr int kColumns = kWarp;
constexpr int kStageRows = 128;
constexpr int kThreads = kWarpBlock;  // warp 0 adds, the other warps load
constexpr int kLoaders = kWarpsPerBlock - 1;

__global__ void column_sums_kernel(const float* x, std::int64_t rows, std::int64_t cols,
                                   std::int64_t ld, const std::uint8_t* mask, double* sums) {
    __shared__ float s_val[2][kStageRows][kColumns];
    __shared__ std::uint8_t s_use[2][kStageRows];
    const int lane = lane_id(), warp = static_cast<int>(threadIdx.x) / kWarp;

    // Rows [r0, r0 + kStageRows) of columns [c0, c0 + 32) into buffer b (loader warps only). The
    // rows are loaded whatever their mask says (warp 0 skips the masked ones), so no load waits
    // for another.
    const auto stage = [&](int b, std::int64_t r0, std::int64_t c) {
#pragma unroll 4
        for (int q = warp - 1; q < kStageRows; q += kLoaders) {
            const std::int64_t r = r0 + q;
            const bool in = r < rows;
            s_val[b][q][lane] = in && c < cols ? x[r * ld + c] : 0.0f;
            if (lane == 0) s_use[b][q] = in ? mask[r] : 0;
        }
    };

    for (std::int64_t c0 = static_cast<std::int64_t>(blockIdx.x) * kColumns; c0 < cols;
         c0 += static_cast<std::int64_t>(gridDim.x) * kColumns) {
        const std::int64_t c = c0 + lane;
        double s = warp == 0 && c < cols ? sums[c] : 0.0;
        if (warp > 0) stage(0, 0, c);
        __syncthreads();
        int b = 0;
        for (std::int64_t r0 = 0; r0 < rows; r0 += kStageRows) {
            if (warp > 0) {
                if (r0 + kStageRows < rows) stage(b ^ 1, r0 + kStageRows, c);
            } else if (c < cols) {
                const std::int64_t left = rows - r0;
                const int n = left < kStageRows ? static_cast<int>(left) : kStageRows;
                for (int q = 0; q < n; ++q)
                    if (s_use[b][q]) s += static_cast<double>(s_val[b][q][lane]);
            }
            __syncthreads();  // stage b is read and stage b ^ 1 written before they swap
            b ^= 1;
        }
        if (warp == 0 && c < cols) sums[c] = s;
    }
}

}  // namespace

void launch_column_sums(const float* x, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                        const std::uint8_t* mask, double* sums, cudaStream_t stream) {
    if (rows <= 0 || cols <= 0) return;
    column_sums_kernel<<<grid_for(cols, kColumns), kThreads, 0, stream>>>(x, rows, cols, ld, mask,
                                                                         sums);
}

}  // namespace embgeom::kernels
