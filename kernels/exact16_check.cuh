#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace embgeom::kernels {

/// Bits of the flags word of launch_exact16_check.
constexpr unsigned kNotBf16Exact = 1u;
constexpr unsigned kNotFp16Exact = 2u;

/// Over the rows with valid[r] != 0: *flags |= kNotBf16Exact when some element is not a bfloat16
/// value, or is non-zero with a magnitude outside [2^-60, 2^50] (engine::kRawBf16MinMagnitude,
/// kRawBf16MaxMagnitude: the range in which raw bfloat16 products and their float32 sums are
/// exact and finite); *flags |= kNotFp16Exact when some element is not a float16 value
/// (subnormals included). Bits are only ever set, so one word can accumulate block after block.
/// x is row-major [rows, cols], leading dimension ld. Asynchronous on stream.
void launch_exact16_check(const float* x, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                          const std::uint8_t* valid, unsigned* flags, cudaStream_t stream);

}  // namespace embgeom::kernels
