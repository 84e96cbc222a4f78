#pragma once
// Runs embgeom's CUDA kernels (kernels/*.cu, compiled as C++ through the headers in cuda_shim/) on
// the CPU, so that their logic is tested in CI, where no GPU exists. It is not a model of GPU
// speed; it is a model of CUDA's execution rules, strict where a kernel could get them wrong:
// - every CUDA thread of a block is a fiber; blocks run one after another;
// - __syncthreads waits for every thread of the block that has not exited, and a block whose
//   threads wait at different barriers (a barrier under divergent control flow) is an error;
// - warp collectives (shuffles, votes) need all 32 lanes of the warp, like their full-mask forms
//   on Volta and later; a lane that exited or waits elsewhere is an error, never a silent value;
// - between barriers, threads run in an order the test picks (forward, reverse or shuffled by a
//   seed), so a result that depends on scheduling (a shared-memory race) shows as a difference;
// - dynamic shared memory starts as 0xFF bytes (NaN floats, -1 integers), not zeros.
// Atomics are plain read-modify-writes: only one fiber runs at a time (launches from several host
// threads take turns).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>

struct CUstream_st;
using cudaStream_t = CUstream_st*;

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x = 1, y = 1, z = 1;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

namespace embgeom::emu {

/// Order in which the runnable threads of a block run between two barriers.
enum class Schedule { kForward, kReverse, kShuffled };

/// Sets the order for later launches (kShuffled draws a new order at every step from seed).
void set_schedule(Schedule schedule, std::uint64_t seed = 0);

/// Runs body once per thread of every block of grid (blocks in x, then y, then z order), with
/// shared_bytes of dynamic shared memory per block. Throws std::logic_error when the kernel
/// breaks one of the rules above (the message says which block and thread).
void run_grid(dim3 grid, dim3 block, std::size_t shared_bytes, const std::function<void()>& body);

// Device-side state of the running thread.
const uint3& thread_index();
const uint3& block_index();
const dim3& block_dims();
const dim3& grid_dims();
void* dynamic_shared_memory();
/// The running thread's lane: its linear index in the block modulo 32.
int lane_index();

enum class Vote { kNone, kOr, kAnd, kCount };
/// __syncthreads and its voting forms at source line file:line; returns the vote over the block's
/// live threads.
int sync_block(Vote vote, int predicate, const char* file, int line);
/// The lane's 8-byte word after a warp exchange in which lane l receives the word of lane
/// source(l); every lane of the warp must take part, with the full mask.
std::uint64_t warp_exchange(unsigned mask, std::uint64_t word, int source_lane);
/// Ballot over the warp (bit l = lane l's predicate); every lane must take part.
unsigned warp_ballot(unsigned mask, int predicate);
void sync_warp(unsigned mask);

/// kernel<<<grid, block, shared, stream>>>(args...) becomes launch(kernel, grid, ...)(args...):
/// the arguments are converted to the kernel's parameter types once, as a launch copies them.
template <class... Params>
auto launch(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t shared = 0,
            cudaStream_t = nullptr) {
    return [=](auto&&... args) {
        const std::tuple<std::decay_t<Params>...> bound(args...);
        run_grid(grid, block, shared, [&] { std::apply(kernel, bound); });
    };
}

template <class T>
T* dynamic_shared() {
    return static_cast<T*>(dynamic_shared_memory());
}

template <class T>
T shuffle(unsigned mask, T value, int source_lane) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffles move <= 8 bytes");
    std::uint64_t word = 0;
    std::memcpy(&word, &value, sizeof(T));
    word = warp_exchange(mask, word, source_lane);
    T out;
    std::memcpy(&out, &word, sizeof(T));
    return out;
}

}  // namespace embgeom::emu
