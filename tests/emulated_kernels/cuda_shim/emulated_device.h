#pragma once
// CUDA's device-side language, as far as kernels/ uses it, for kernels compiled as C++ and run by
// the kernel emulator (../kernel_emulator.hpp). Included through this folder's cuda_runtime.h and
// cuda_runtime_api.h, which stand in for the toolkit's.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernel_emulator.hpp"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// One block runs at a time, so a function-local static is exactly one block's shared variable.
// (The source rewrite turns `extern __shared__ T name[];` into a pointer to the block's dynamic
// shared memory.)
#define __shared__ static

#define threadIdx (::embgeom::emu::thread_index())
#define blockIdx (::embgeom::emu::block_index())
#define blockDim (::embgeom::emu::block_dims())
#define gridDim (::embgeom::emu::grid_dims())
constexpr int warpSize = 32;

using std::isfinite;
using std::isinf;
using std::isnan;

// Barriers are macros so that each call site is known: threads waiting at different
// __syncthreads (divergent code) are an error, as CUDA's rules say, even though the hardware's
// single barrier would let it pass.
#define __syncthreads() \
    ::embgeom::emu::sync_block(::embgeom::emu::Vote::kNone, 0, __FILE__, __LINE__)
#define __syncthreads_or(p) \
    ::embgeom::emu::sync_block(::embgeom::emu::Vote::kOr, (p), __FILE__, __LINE__)
#define __syncthreads_and(p) \
    ::embgeom::emu::sync_block(::embgeom::emu::Vote::kAnd, (p), __FILE__, __LINE__)
#define __syncthreads_count(p) \
    ::embgeom::emu::sync_block(::embgeom::emu::Vote::kCount, (p), __FILE__, __LINE__)
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::embgeom::emu::sync_warp(mask); }

template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = warpSize) {
    const int lane = ::embgeom::emu::lane_index();
    (void)width;  // kernels/ shuffles whole warps
    return ::embgeom::emu::shuffle(mask, v, lane ^ lane_mask);
}
template <class T>
T __shfl_sync(unsigned mask, T v, int src_lane, int width = warpSize) {
    (void)width;
    return ::embgeom::emu::shuffle(mask, v, src_lane % warpSize);
}
// Lanes whose source would fall outside the warp keep their own value, as on the device.
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
    (void)width;
    const int lane = ::embgeom::emu::lane_index();
    const int d = static_cast<int>(delta);
    return ::embgeom::emu::shuffle(mask, v, lane >= d ? lane - d : lane);
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
    (void)width;
    const int lane = ::embgeom::emu::lane_index();
    const int d = static_cast<int>(delta);
    return ::embgeom::emu::shuffle(mask, v, lane + d < warpSize ? lane + d : lane);
}
inline unsigned __ballot_sync(unsigned mask, int p) { return ::embgeom::emu::warp_ballot(mask, p); }
inline int __all_sync(unsigned mask, int p) { return ::embgeom::emu::warp_ballot(mask, p) == mask; }
inline int __any_sync(unsigned mask, int p) { return ::embgeom::emu::warp_ballot(mask, p) != 0; }

// Atomics: one fiber runs at a time, so a plain read-modify-write is atomic.
template <class T, class U>
T atomicAdd(T* p, U v) {
    const T old = *p;
    *p = static_cast<T>(old + static_cast<T>(v));
    return old;
}
template <class T, class U>
T atomicOr(T* p, U v) {
    const T old = *p;
    *p = static_cast<T>(old | static_cast<T>(v));
    return old;
}
template <class T, class U>
T atomicMax(T* p, U v) {
    const T old = *p;
    if (static_cast<T>(v) > old) *p = static_cast<T>(v);
    return old;
}
template <class T, class U>
T atomicMin(T* p, U v) {
    const T old = *p;
    if (static_cast<T>(v) < old) *p = static_cast<T>(v);
    return old;
}
template <class T>
T atomicCAS(T* p, T compare, T v) {
    const T old = *p;
    if (old == compare) *p = v;
    return old;
}

// Rounding intrinsics: the emulated sources are compiled with -ffp-contract=off, so each is one
// IEEE operation rounded to nearest, as on the device.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __drcp_rn(double a) { return 1.0 / a; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline float __double2float_rn(double a) { return static_cast<float>(a); }
inline long long __double2ll_rn(double a) { return std::llrint(a); }
inline int __float2int_rn(float a) { return static_cast<int>(std::lrint(a)); }

template <class To, class From>
inline To emulated_bit_cast(From v) {
    static_assert(sizeof(To) == sizeof(From), "same size");
    To out;
    std::memcpy(&out, &v, sizeof out);
    return out;
}
inline float __int_as_float(int v) { return emulated_bit_cast<float>(v); }
inline float __uint_as_float(unsigned v) { return emulated_bit_cast<float>(v); }
inline int __float_as_int(float v) { return emulated_bit_cast<int>(v); }
inline unsigned __float_as_uint(float v) { return emulated_bit_cast<unsigned>(v); }
inline long long __double_as_longlong(double v) { return emulated_bit_cast<long long>(v); }
inline double __longlong_as_double(long long v) { return emulated_bit_cast<double>(v); }
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __popcll(unsigned long long v) { return __builtin_popcountll(v); }
inline int __ffs(int v) { return __builtin_ffs(v); }
inline int __clz(int v) { return v == 0 ? 32 : __builtin_clz(static_cast<unsigned>(v)); }
