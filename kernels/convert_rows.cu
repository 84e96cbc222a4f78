#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "convert_rows.cuh"
#include "kernel_utils.cuh"

namespace embgeom::kernels {
namespace {

__device__ inline std::uint16_t to_bits(float v, Half16 fmt) {
    return fmt == Half16::kBf16 ? __bfloat16_as_ushort(__float2bfloat16_rn(v))
                                : __half_as_ushort(__float2half_rn(v));
}

// One warp per row, lanes along the columns; the warp's butterfly sum keeps the norm
// deterministic (it only scales raw products, so it need not match the host's bits).
__global__ void convert_rows_kernel(const float* x, std::int64_t rows, std::int64_t cols,
                                    std::int64_t ld, const std::uint8_t* valid, Half16 fmt,
                                    std::uint16_t* out, std::int64_t ld_out, double* inv_norm) {
    const int lane = lane_id();
    for (std::int64_t r = global_warp(); r < rows; r += warp_stride()) {
        const bool keep = valid == nullptr || valid[r] != 0;
        const float* row = x + r * ld;
        std::uint16_t* dst = out + r * ld_out;
        double ss = 0.0;
        for (std::int64_t c = lane; c < cols; c += kWarp) {
            const float v = keep ? row[c] : 0.0f;
            dst[c] = to_bits(v, fmt);
            ss = __dadd_rn(ss, __dmul_rn(static_cast<double>(v), static_cast<double>(v)));
        }
        if (inv_norm == nullptr) continue;
        ss = warp_sum(ss);
        if (lane == 0) inv_norm[r] = keep && ss > 0.0 ? __drcp_rn(__dsqrt_rn(ss)) : 0.0;
    }
}

__global__ void bf16_to_fp16_kernel(std::uint16_t* p, std::int64_t count) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
         e < count; e += stride)
        p[e] = __half_as_ushort(__float2half_rn(__bfloat162float(__ushort_as_bfloat16(p[e]))));
}

}  // namespace

void launch_convert_rows(const float* x, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                         const std::uint8_t* valid, Half16 fmt, std::uint16_t* out,
                         std::int64_t ld_out, double* inv_norm, cudaStream_t stream) {
    if (rows <= 0) return;
    convert_rows_kernel<<<grid_for(rows, kWarpsPerBlock), kWarpBlock, 0, stream>>>(
        x, rows, cols, ld, valid, fmt, out, ld_out, inv_norm);
}

void launch_bf16_to_fp16(std::uint16_t* p, std::int64_t count, cudaStream_t stream) {
    if (count <= 0) return;
    constexpr int kThreads = 256;
    bf16_to_fp16_kernel<<<grid_for(count, kThreads), kThreads, 0, stream>>>(p, count);
}

}  // namespace embgeom::kernels
