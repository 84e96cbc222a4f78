#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "exact16_check.cuh"
#include "kernel_utils.cuh"

namespace embgeom::kernels {
namespace {

constexpr float kBf16Min = 0x1p-60f;
constexpr float kBf16Max = 0x1p50f;

// One warp per row, lanes along the columns (coalesced). A warp votes before touching the flags,
// so a table that passes costs no atomics at all.
__global__ void exact16_check_kernel(const float* x, std::int64_t rows, std::int64_t cols,
                                     std::int64_t ld, const std::uint8_t* valid, unsigned* flags) {
    const int lane = lane_id();
    unsigned bad = 0;
    for (std::int64_t r = global_warp(); r < rows; r += warp_stride()) {
        if (!valid[r]) continue;
        const float* row = x + r * ld;
        for (std::int64_t c = lane; c < cols; c += kWarp) {
            const float v = row[c];
            const float a = fabsf(v);
            if (__bfloat162float(__float2bfloat16_rn(v)) != v ||
                (a != 0.0f && (a < kBf16Min || a > kBf16Max)))
                bad |= kNotBf16Exact;
            if (__half2float(__float2half_rn(v)) != v) bad |= kNotFp16Exact;
        }
    }
    for (int m = kWarp / 2; m > 0; m /= 2) bad |= __shfl_xor_sync(kFullMask, bad, m);
    if (lane == 0 && bad != 0) atomicOr(flags, bad);
}

}  // namespace

void launch_exact16_check(const float* x, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                          const std::uint8_t* valid, unsigned* flags, cudaStream_t stream) {
    if (rows <= 0 || cols <= 0) return;
    exact16_check_kernel<<<grid_for(rows, kWarpsPerBlock), kWarpBlock, 0, stream>>>(
        x, rows, cols, ld, valid, flags);
}

}  // namespace embgeom::kernels
