#include <cuda_fp16.h>

#include "kernel_utils.cuh"
#include "packed16.cuh"

namespace embgeom::kernels {
namespace {

constexpr int kThreads = 256;

__device__ inline float unpacked(std::uint16_t v, Half16 fmt) {
    return fmt == Half16::kBf16 ? __uint_as_float(static_cast<unsigned>(v) << 16)
                                : __half2float(__ushort_as_half(v));
}

__device__ inline std::uint16_t packed(float v, Half16 fmt) {
    return fmt == Half16::kBf16 ? static_cast<std::uint16_t>(__float_as_uint(v) >> 16)
                                : __half_as_ushort(__float2half_rn(v));
}

__global__ void pack16_kernel(const float* x, std::int64_t count, Half16 fmt, std::uint16_t* out,
                              unsigned* inexact) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    unsigned bad = 0;
    for (std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
         e < count; e += stride) {
        const float v = x[e];
        const std::uint16_t p = packed(v, fmt);
        out[e] = p;
        bad |= __float_as_uint(unpacked(p, fmt)) != __float_as_uint(v) ? 1u : 0u;
    }
    // Every lane reaches the vote (it follows the loop), and a warp that packed exactly writes
    // nothing.
    for (int m = kWarp / 2; m > 0; m /= 2) bad |= __shfl_xor_sync(kFullMask, bad, m);
    if (lane_id() == 0 && bad != 0) atomicOr(inexact, 1u);
}

__global__ void unpack16_kernel(const std::uint16_t* in, std::int64_t count, Half16 fmt,
                                float* out) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
         e < count; e += stride)
        out[e] = unpacked(in[e], fmt);
}

}  // namespace

void launch_pack16(const float* x, std::int64_t count, Half16 fmt, std::uint16_t* out,
                   unsigned* inexact, cudaStream_t stream) {
    if (count <= 0) return;
    pack16_kernel<<<grid_for(count, kThreads), kThreads, 0, stream>>>(x, count, fmt, out, inexact);
}

void launch_unpack16(const std::uint16_t* in, std::int64_t count, Half16 fmt, float* out,
                     cudaStream_t stream) {
    if (count <= 0) return;
    unpack16_kernel<<<grid_for(count, kThreads), kThreads, 0, stream>>>(in, count, fmt, out);
}

}  // namespace embgeom::kernels
