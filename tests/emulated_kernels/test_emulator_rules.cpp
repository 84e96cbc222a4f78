// The emulator's own rules, on small kernels written here: if it let a broken kernel pass, the
// kernel tests beside this file would prove nothing.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <numeric>
#include <stdexcept>
#include <vector>

namespace {

namespace emu = embgeom::emu;

__global__ void block_reverse_kernel(const int* in, int* out) {
    __shared__ int s[256];
    const unsigned t = threadIdx.x;
    s[t] = in[blockIdx.x * blockDim.x + t];
    __syncthreads();
    out[blockIdx.x * blockDim.x + t] = s[blockDim.x - 1 - t];
}

TEST(KernelEmulator, SharedMemoryAndBarriersAcrossBlocks) {
    std::vector<int> in(3 * 256), out(in.size(), -1);
    std::iota(in.begin(), in.end(), 0);
    for (emu::Schedule order : {emu::Schedule::kForward, emu::Schedule::kReverse}) {
        emu::set_schedule(order);
        emu::launch(block_reverse_kernel, 3, 256)(in.data(), out.data());
        for (int b = 0; b < 3; ++b)
            for (int t = 0; t < 256; ++t) ASSERT_EQ(out[b * 256 + t], b * 256 + 255 - t);
    }
    emu::set_schedule(emu::Schedule::kForward);
}

__global__ void racy_kernel(int* out) {
    __shared__ int s[64];
    const unsigned t = threadIdx.x;
    s[t] = -1;
    __syncthreads();
    s[t] = static_cast<int>(t);
    out[t] = s[(t + 1) % 64];  // a neighbour's value, and no barrier since it was written
}

TEST(KernelEmulator, ScheduleOrderExposesASharedMemoryRace) {
    std::vector<int> forward(64), reverse(64);
    emu::set_schedule(emu::Schedule::kForward);
    emu::launch(racy_kernel, 1, 64)(forward.data());
    emu::set_schedule(emu::Schedule::kReverse);
    emu::launch(racy_kernel, 1, 64)(reverse.data());
    emu::set_schedule(emu::Schedule::kForward);
    EXPECT_NE(forward, reverse);
}

__global__ void divergent_barrier_kernel(int* out) {
    if (threadIdx.x < 32) {
        __syncthreads();
        out[threadIdx.x] = 1;
    }
}

TEST(KernelEmulator, BarrierAfterOtherThreadsExitedIsLegal) {
    std::vector<int> out(64);
    // Threads 32..63 exit, so the barrier holds only live threads: legal, as on Volta and later.
    EXPECT_NO_THROW(emu::launch(divergent_barrier_kernel, 1, 64)(out.data()));
}

__global__ void two_block_barriers_kernel(int* out) {
    if (threadIdx.x < 32)
        __syncthreads();
    else
        __syncthreads();
    out[threadIdx.x] = 1;
}

__global__ void barrier_and_warp_sync_kernel(int* out) {
    if (threadIdx.x < 16)
        __syncthreads();
    else
        __syncwarp();
    out[threadIdx.x] = 1;
}

void expect_error(void (*kernel)(int*), const char* says) {
    std::vector<int> out(64);
    try {
        emu::launch(kernel, 1, 64)(out.data());
        ADD_FAILURE() << "no error";
    } catch (const std::logic_error& e) {
        EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
}

TEST(KernelEmulator, ThreadsAtDifferentBarriersAreAnError) {
    expect_error(two_block_barriers_kernel, "different __syncthreads");
    // Lanes 0-15 at the block barrier, lanes 16-31 of the same warp in a warp sync: neither can
    // complete.
    expect_error(barrier_and_warp_sync_kernel, "different barriers");
}

__global__ void warp_ops_kernel(const float* in, float* sums, unsigned* ballots, int* all) {
    const unsigned t = threadIdx.x;
    float v = in[t];
    for (int m = 16; m > 0; m /= 2) v += __shfl_xor_sync(0xffffffffu, v, m);
    sums[t] = v;
    ballots[t] = __ballot_sync(0xffffffffu, t % 3 == 0);
    all[t] = __all_sync(0xffffffffu, t < 64);
}

TEST(KernelEmulator, WarpShufflesAndVotes) {
    std::vector<float> in(64), sums(64);
    std::vector<unsigned> ballots(64);
    std::vector<int> all(64);
    std::iota(in.begin(), in.end(), 1.0f);
    emu::set_schedule(emu::Schedule::kShuffled, 7);
    emu::launch(warp_ops_kernel, 1, 64)(in.data(), sums.data(), ballots.data(), all.data());
    emu::set_schedule(emu::Schedule::kForward);
    unsigned want0 = 0, want1 = 0;
    for (int l = 0; l < 32; ++l) {
        if (l % 3 == 0) want0 |= 1u << l;
        if ((32 + l) % 3 == 0) want1 |= 1u << l;
    }
    for (int t = 0; t < 64; ++t) {
        EXPECT_EQ(sums[t], t < 32 ? 528.0f : 1552.0f);  // 1+..+32, 33+..+64
        EXPECT_EQ(ballots[t], t < 32 ? want0 : want1);
        EXPECT_EQ(all[t], 1);
    }
}

__global__ void early_exit_shuffle_kernel(int* out) {
    if (threadIdx.x == 5) return;
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, static_cast<int>(threadIdx.x), 1);
}

TEST(KernelEmulator, ShuffleWithAnExitedLaneIsAnError) {
    std::vector<int> out(32);
    EXPECT_THROW(emu::launch(early_exit_shuffle_kernel, 1, 32)(out.data()), std::logic_error);
}

TEST(KernelEmulator, DynamicSharedMemoryStartsAsGarbage) {
    std::vector<unsigned> out(32, 0);
    // Test files are not rewritten, so `extern __shared__` is spelled as the rewrite makes it.
    emu::run_grid(1, 32, 32 * sizeof(unsigned),
                  [&] { out[threadIdx.x] = emu::dynamic_shared<unsigned>()[threadIdx.x]; });
    for (unsigned v : out) EXPECT_EQ(v, 0xFFFFFFFFu);
}

}  // namespace
