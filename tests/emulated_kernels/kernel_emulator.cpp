#include "kernel_emulator.hpp"

#include <sys/mman.h>
#include <unistd.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__x86_64__)
// Stack switch for x86-64 (System V): saves the callee-saved registers on the current stack,
// stores its pointer in *save, loads load and restores that stack's registers. swapcontext would
// also save and restore the signal mask, a system call per switch that made the fold tests spend
// most of their time in the kernel.
extern "C" void embgeom_emu_switch(void** save, void* load);
asm(R"(
    .pushsection .text
    .globl embgeom_emu_switch
    .type embgeom_emu_switch, @function
embgeom_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size embgeom_emu_switch, .-embgeom_emu_switch
    .popsection
)");
#endif

namespace embgeom::emu {
namespace {

// A saved execution context: a stack pointer (x86-64) or a ucontext (elsewhere).
struct Context {
#if defined(__x86_64__)
    void* sp = nullptr;
#else
    ucontext_t uc{};
#endif
};

void switch_context(Context& from, Context& to) {
#if defined(__x86_64__)
    embgeom_emu_switch(&from.sp, to.sp);
#else
    swapcontext(&from.uc, &to.uc);
#endif
}

// Makes c start entry() on the stack [stack, stack + bytes); entry must never return.
void start_context(Context& c, void* stack, std::size_t bytes, void (*entry)()) {
#if defined(__SANITIZE_ADDRESS__)
    // The stack's last user may have left frames (and their poisoned redzones) on it.
    ASAN_UNPOISON_MEMORY_REGION(stack, bytes);
#endif
#if defined(__x86_64__)
    // The frame embgeom_emu_switch pops: six registers, then entry as the return address, then
    // a dummy return address for entry, with the stack aligned as after a call.
    auto top = reinterpret_cast<std::uintptr_t>(static_cast<char*>(stack) + bytes) & ~15ull;
    auto* frame = reinterpret_cast<void**>(top) - 8;
    for (int r = 0; r < 6; ++r) frame[r] = nullptr;
    frame[6] = reinterpret_cast<void*>(entry);
    frame[7] = nullptr;
    c.sp = frame;
#else
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = bytes;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, entry, 0);
#endif
}

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr unsigned kMaxThreads = 1024;
// Kernels keep a few registers' worth of locals; sanitizer builds need room for redzones.
constexpr std::size_t kStackBytes = 256 * 1024;

enum class State { kRunnable, kAtBlockBarrier, kAtWarpCollective, kDone };
enum class Collective { kExchange, kBallot, kSync };

struct Fiber {
    Context context;
    void* stack = nullptr;
    uint3 index{0, 0, 0};
    int lane = 0, warp = 0;
    State state = State::kDone;
    int predicate = 0, vote_result = 0;  // block barrier vote
    const char* barrier_file = nullptr;  // the __syncthreads it waits at
    int barrier_line = 0;
    Collective collective = Collective::kSync;
    std::uint64_t word = 0, result = 0;  // warp collective in and out
    int source = 0;
};

struct Stack {
    void* base = nullptr;  // guard page, then the stack
    std::size_t bytes = 0;
    Stack() {
        const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
        bytes = kStackBytes + page;
        base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED) throw std::runtime_error("kernel emulator: no memory for a stack");
        mprotect(base, page, PROT_NONE);  // an overflowing kernel faults instead of corrupting
    }
    ~Stack() { munmap(base, bytes); }
    Stack(const Stack&) = delete;
    Stack& operator=(const Stack&) = delete;
    char* top_region() const { return static_cast<char*>(base) + (bytes - kStackBytes); }
};

struct Launch {
    dim3 grid, block;
    uint3 block_index{0, 0, 0};
    std::vector<unsigned char> shared;
    const std::function<void()>* body = nullptr;
    std::vector<Fiber> fibers;
    Context scheduler;
    Fiber* current = nullptr;
    std::string failure;  // a rule a thread broke
#if defined(__SANITIZE_ADDRESS__)
    const void* scheduler_stack = nullptr;
    std::size_t scheduler_stack_bytes = 0;
#endif
};

// The launch running on this thread (its fibers share the thread). Launches from several host
// threads (the multi-device engine) take turns: a kernel's __shared__ variables are statics.
thread_local Launch* g_launch = nullptr;
std::mutex g_launch_mutex;
Schedule g_schedule = Schedule::kForward;
std::mt19937_64 g_rng;

std::vector<std::unique_ptr<Stack>>& stacks() {
    static std::vector<std::unique_ptr<Stack>> pool;  // reused by every block of every launch
    return pool;
}

std::string where(const Launch& l, const Fiber& f) {
    return "block (" + std::to_string(l.block_index.x) + "," + std::to_string(l.block_index.y) +
           "," + std::to_string(l.block_index.z) + ") thread (" + std::to_string(f.index.x) + "," +
           std::to_string(f.index.y) + "," + std::to_string(f.index.z) + ")";
}

void switch_to_fiber(Launch& l, Fiber& f) {
    l.current = &f;
#if defined(__SANITIZE_ADDRESS__)
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, static_cast<char*>(f.stack), kStackBytes);
    switch_context(l.scheduler, f.context);
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
    switch_context(l.scheduler, f.context);
#endif
    l.current = nullptr;
}

// From a fiber back to the scheduler; returns when the scheduler resumes the fiber.
void yield_to_scheduler(bool finished = false) {
    Launch& l = *g_launch;
    Fiber& f = *l.current;
#if defined(__SANITIZE_ADDRESS__)
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(finished ? nullptr : &fake, l.scheduler_stack,
                                   l.scheduler_stack_bytes);
    switch_context(f.context, l.scheduler);
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
    (void)finished;
    switch_context(f.context, l.scheduler);
#endif
}

[[noreturn]] void fail_in_fiber(const std::string& rule) {
    Launch& l = *g_launch;
    Fiber& f = *l.current;
    if (l.failure.empty()) l.failure = where(l, f) + ": " + rule;
    f.state = State::kDone;
    for (;;) yield_to_scheduler(true);  // never resumed: the scheduler throws
}

void fiber_entry() {
    Launch& l = *g_launch;
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_finish_switch_fiber(nullptr, &l.scheduler_stack, &l.scheduler_stack_bytes);
#endif
    try {
        (*l.body)();
    } catch (const std::exception& e) {
        fail_in_fiber(std::string("threw ") + e.what());
    }
    l.current->state = State::kDone;
    for (;;) yield_to_scheduler(true);
}

// Releases a block barrier when every live thread waits at one: the vote is over them.
bool release_block_barrier(Launch& l) {
    int live = 0, ors = 0, ands = 1, count = 0;
    const Fiber* first = nullptr;
    for (const Fiber& f : l.fibers) {
        if (f.state == State::kDone) continue;
        if (f.state != State::kAtBlockBarrier) return false;
        if (!first) first = &f;
        if (f.barrier_line != first->barrier_line ||
            std::strcmp(f.barrier_file, first->barrier_file) != 0)
            throw std::logic_error(
                "kernel emulator: threads wait at different __syncthreads: " + where(l, *first) +
                " at " + first->barrier_file + ":" + std::to_string(first->barrier_line) + ", " +
                where(l, f) + " at " + f.barrier_file + ":" + std::to_string(f.barrier_line));
        ++live;
        ors |= f.predicate != 0;
        ands &= f.predicate != 0;
        count += f.predicate != 0;
    }
    if (live == 0) return false;
    for (Fiber& f : l.fibers) {
        if (f.state != State::kAtBlockBarrier) continue;
        f.vote_result = count;  // sync_block maps the count to or / and
        f.predicate = ors | (ands << 1);
        f.state = State::kRunnable;
    }
    return true;
}

// Releases warp w's collective when all 32 lanes wait at the same kind of one.
bool release_warp(Launch& l, int w) {
    const std::size_t first = static_cast<std::size_t>(w) * kWarpSize;
    const std::size_t end = std::min(first + kWarpSize, l.fibers.size());
    Fiber& lead = l.fibers[first];
    if (lead.state != State::kAtWarpCollective) return false;
    for (std::size_t t = first; t < end; ++t) {
        const Fiber& f = l.fibers[t];
        if (f.state != State::kAtWarpCollective) return false;
        if (f.collective != lead.collective)
            throw std::logic_error("kernel emulator: " + where(l, f) +
                                   ": lanes of one warp are in different warp collectives");
    }
    unsigned ballot = 0;
    for (std::size_t t = first; t < end; ++t)
        if (l.fibers[t].word != 0) ballot |= 1u << l.fibers[t].lane;
    for (std::size_t t = first; t < end; ++t) {
        Fiber& f = l.fibers[t];
        if (f.collective == Collective::kExchange)
            f.result = l.fibers[first + static_cast<std::size_t>(f.source)].word;
        else if (f.collective == Collective::kBallot)
            f.result = ballot;
        f.state = State::kRunnable;
    }
    return true;
}

std::string states(const Launch& l) {
    std::string s;
    for (const Fiber& f : l.fibers) {
        if (f.state == State::kAtBlockBarrier) s += " " + where(l, f) + " at __syncthreads;";
        if (f.state == State::kAtWarpCollective) s += " " + where(l, f) + " in a warp collective;";
    }
    return s.substr(0, 600);
}

void run_block(Launch& l) {
    auto& pool = stacks();
    const unsigned n = l.block.x * l.block.y * l.block.z;
    while (pool.size() < n) pool.push_back(std::make_unique<Stack>());
    l.fibers.assign(n, Fiber{});
    for (unsigned t = 0; t < n; ++t) {
        Fiber& f = l.fibers[t];
        f.index = {t % l.block.x, (t / l.block.x) % l.block.y, t / (l.block.x * l.block.y)};
        f.lane = static_cast<int>(t % kWarpSize);
        f.warp = static_cast<int>(t / kWarpSize);
        f.stack = pool[t]->top_region();
        f.state = State::kRunnable;
        start_context(f.context, f.stack, kStackBytes, fiber_entry);
    }
    std::fill(l.shared.begin(), l.shared.end(), static_cast<unsigned char>(0xFF));

    std::vector<unsigned> order(n);
    for (unsigned t = 0; t < n; ++t) order[t] = g_schedule == Schedule::kReverse ? n - 1 - t : t;
    const int warps = static_cast<int>((n + kWarpSize - 1) / kWarpSize);
    for (;;) {
        if (g_schedule == Schedule::kShuffled) std::shuffle(order.begin(), order.end(), g_rng);
        bool ran = false;
        for (unsigned t : order) {
            Fiber& f = l.fibers[t];
            if (f.state != State::kRunnable) continue;
            switch_to_fiber(l, f);
            ran = true;
            if (!l.failure.empty()) throw std::logic_error("kernel emulator: " + l.failure);
        }
        if (std::all_of(l.fibers.begin(), l.fibers.end(),
                        [](const Fiber& f) { return f.state == State::kDone; }))
            return;
        bool released = false;
        for (int w = 0; w < warps; ++w) released |= release_warp(l, w);
        if (!released) released = release_block_barrier(l);
        if (!ran && !released)
            throw std::logic_error(
                "kernel emulator: threads wait at different barriers (a barrier or warp "
                "collective under divergent control flow, or a warp with exited lanes):" +
                states(l));
    }
}

Fiber& running_fiber(const char* what) {
    if (!g_launch || !g_launch->current)
        throw std::logic_error(std::string("kernel emulator: ") + what + " outside a kernel");
    return *g_launch->current;
}

}  // namespace

void set_schedule(Schedule schedule, std::uint64_t seed) {
    g_schedule = schedule;
    g_rng.seed(seed);
}

void run_grid(dim3 grid, dim3 block, std::size_t shared_bytes, const std::function<void()>& body) {
    const unsigned threads = block.x * block.y * block.z;
    if (threads == 0 || threads > kMaxThreads || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
        grid.y > 65535 || grid.z > 65535)
        throw std::logic_error("kernel emulator: invalid launch configuration (grid " +
                               std::to_string(grid.x) + "x" + std::to_string(grid.y) + "x" +
                               std::to_string(grid.z) + ", block of " + std::to_string(threads) +
                               " threads)");
    if (g_launch) throw std::logic_error("kernel emulator: a kernel launched from a kernel");
    std::lock_guard<std::mutex> one_at_a_time(g_launch_mutex);
    Launch l;
    l.grid = grid;
    l.block = block;
    l.shared.resize(shared_bytes);
    l.body = &body;
    g_launch = &l;
    try {
        for (unsigned z = 0; z < grid.z; ++z)
            for (unsigned y = 0; y < grid.y; ++y)
                for (unsigned x = 0; x < grid.x; ++x) {
                    l.block_index = {x, y, z};
                    run_block(l);
                }
    } catch (...) {
        g_launch = nullptr;
        throw;
    }
    g_launch = nullptr;
}

const uint3& thread_index() { return running_fiber("threadIdx").index; }
const uint3& block_index() {
    running_fiber("blockIdx");
    return g_launch->block_index;
}
const dim3& block_dims() {
    running_fiber("blockDim");
    return g_launch->block;
}
const dim3& grid_dims() {
    running_fiber("gridDim");
    return g_launch->grid;
}
void* dynamic_shared_memory() {
    running_fiber("extern __shared__");
    return g_launch->shared.empty() ? nullptr : g_launch->shared.data();
}

int lane_index() { return running_fiber("a lane index").lane; }

int sync_block(Vote vote, int predicate, const char* file, int line) {
    Fiber& f = running_fiber("__syncthreads");
    f.predicate = predicate;
    f.barrier_file = file;
    f.barrier_line = line;
    f.state = State::kAtBlockBarrier;
    yield_to_scheduler();
    const int ors = f.predicate & 1, ands = (f.predicate >> 1) & 1;
    switch (vote) {
        case Vote::kOr:
            return ors;
        case Vote::kAnd:
            return ands;
        case Vote::kCount:
            return f.vote_result;
        case Vote::kNone:
            break;
    }
    return 0;
}

namespace {
std::uint64_t warp_collective(Collective kind, unsigned mask, std::uint64_t word, int source) {
    Fiber& f = running_fiber("a warp collective");
    if (mask != kFullMask)
        fail_in_fiber("a warp collective with a partial mask (the emulator models full warps)");
    if (g_launch->fibers.size() % kWarpSize != 0)
        fail_in_fiber("a warp collective in a block that is not a whole number of warps");
    if (source < 0 || source >= kWarpSize) fail_in_fiber("a shuffle from a lane outside the warp");
    f.collective = kind;
    f.word = word;
    f.source = source;
    f.state = State::kAtWarpCollective;
    yield_to_scheduler();
    return f.result;
}
}  // namespace

std::uint64_t warp_exchange(unsigned mask, std::uint64_t word, int source_lane) {
    return warp_collective(Collective::kExchange, mask, word, source_lane);
}
unsigned warp_ballot(unsigned mask, int predicate) {
    return static_cast<unsigned>(
        warp_collective(Collective::kBallot, mask, predicate != 0 ? 1 : 0, 0));
}
void sync_warp(unsigned mask) { warp_collective(Collective::kSync, mask, 0, 0); }

}  // namespace embgeom::emu
