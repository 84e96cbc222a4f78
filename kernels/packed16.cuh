#pragma once
// The held table (src/cuda/device_table.cpp) in 16 bits where its values allow: packing checks
// that every value comes back with the same float32 bits, unpacking gives those bits back, so
// every pass that reads the packed copy sees exactly the rows it would read as float32.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "convert_rows.cuh"  // Half16

namespace embgeom::kernels {

/// out[e] = x[e] in fmt for e < count: bfloat16 as the upper 16 bits of the float32 (no
/// rounding), float16 rounded to nearest even. Sets *inexact to 1 when any value does not come
/// back from out[e] with its own float32 bits (NaN payloads, bits below the format, float16's
/// range); leaves it untouched otherwise. Asynchronous on stream.
void launch_pack16(const float* x, std::int64_t count, Half16 fmt, std::uint16_t* out,
                   unsigned* inexact, cudaStream_t stream);

/// out[e] = the float32 value of in[e] in fmt for e < count (exact). Asynchronous on stream.
void launch_unpack16(const std::uint16_t* in, std::int64_t count, Half16 fmt, float* out,
                     cudaStream_t stream);

}  // namespace embgeom::kernels
