// The CUDA engine's choice of plan (engine/device_memory_plan.hpp), checked without a GPU: what
// it picks at the budgets around each layout's size, and that it never picks one over the budget.
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>

#include "embgeom/errors.hpp"
#include "engine/device_memory_plan.hpp"
#include "engine/precision_policy.hpp"

namespace embgeom::engine {
namespace {

constexpr std::uint64_t kPlenty = 1ull << 40;

AllPairsOptions options(Precision p, int k = 10) {
    AllPairsOptions o;
    o.precision = p;
    o.k = k;
    o.hist_bins = 200;
    o.max_dup_pairs = 1000;
    return o;
}

DevicePlanRequest request(std::int64_t rows, std::int64_t cols, const AllPairsOptions& o) {
    DevicePlanRequest r;
    r.rows = rows;
    r.cols = cols;
    r.k = std::min<std::int64_t>(o.k, rows - 1);
    r.candidate_width = candidate_count(o.k, rows);
    return r;
}

DeviceBudget budget(std::uint64_t limit) {
    DeviceBudget b;
    b.asked = limit;
    b.usable = kPlenty;
    b.free_bytes = kPlenty;
    return b;
}

// The bytes of a layout, computed here from the parts rather than by the chooser.
std::uint64_t layout_bytes(std::int64_t rows, std::int64_t cols, const AllPairsOptions& o,
                           std::int64_t k, bool copy16, std::int64_t t, bool resident) {
    DeviceMemoryPlan p;
    p.n = rows;
    p.d = cols;
    p.k = k;
    p.bins = o.hist_bins;
    p.pair_capacity = device_pair_capacity(o);
    p.copy16 = copy16;
    return p.total(t, resident);
}

// The largest default tile side (8192, 4096, ..., 256) whose bytes fit limit, or 0.
template <class Bytes>
std::int64_t largest_fitting_side(std::uint64_t limit, Bytes bytes) {
    for (std::int64_t t = kDefaultDeviceTile; t >= kMinDeviceTile; t /= 2)
        if (bytes(t) <= limit) return t;
    return 0;
}

TEST(DeviceMemoryPlan, PartsAddUpToTheBuffersTheEngineAllocates) {
    DeviceMemoryPlan p;
    p.n = 1000;
    p.d = 64;
    p.k = 40;
    p.bins = 100;
    p.pair_capacity = 11;
    // valid + zero-row flags (2), the row mean (4), 40 slots of (float, int64).
    EXPECT_EQ(p.per_row(), 1000u * (2 + 4 + 40 * 12));
    EXPECT_EQ(p.fixed(), p.per_row() + 2 * 64 * 8 + 100 * 8 + 24 + 11 * kDevicePairBytes);
    EXPECT_EQ(p.table(256, true), 1000u * 64 * 4);
    EXPECT_EQ(p.table(256, false), 2u * 256 * 64 * 4);
    EXPECT_EQ(p.tiles(256), 256u * 256 * 4 + 256 * 16);
    p.copy16 = true;
    p.row_sums = true;
    p.radius = true;
    EXPECT_EQ(p.per_row(), 1000u * (2 + 4 + 8 + 40 * 12));
    EXPECT_EQ(p.table(256, true), 1000u * 64 * 6);
    EXPECT_EQ(p.fixed(),
              p.per_row() + 2 * 64 * 8 + 100 * 8 + 24 + 1000 * 4 + 11 * kDevicePairBytes + 8008);
}

TEST(DeviceMemoryPlan, AnAmpleBudgetHoldsEveryExtraAtTheLargestTile) {
    const AllPairsOptions o = options(Precision::kAuto);
    const DevicePlanChoice c = choose_device_plan(request(20000, 768, o), o, budget(kPlenty));
    EXPECT_EQ(c.tile, kDefaultDeviceTile);
    EXPECT_TRUE(c.resident);
    EXPECT_TRUE(c.copy16);
    EXPECT_TRUE(c.candidates);
    EXPECT_FALSE(c.transposed);
    EXPECT_EQ(c.plan.k, 40);
    EXPECT_EQ(c.plan.total(c.tile, true), largest_device_plan_bytes(20000, 768, o));
}

TEST(DeviceMemoryPlan, ExtrasComeBeforeTileSideAndResidenceBeforeExtras) {
    const std::int64_t V = 20000, d = 768;
    const AllPairsOptions o = options(Precision::kAuto);
    const DevicePlanRequest r = request(V, d, o);
    const std::uint64_t full_4096 = layout_bytes(V, d, o, 40, true, 4096, true);
    // One byte short of the extras at 8192, exactly enough at 4096: the extras at the smaller
    // tile, not an exact plan at the larger one.
    DevicePlanChoice c = choose_device_plan(r, o, budget(full_4096));
    EXPECT_EQ(c.tile, 4096);
    EXPECT_TRUE(c.resident && c.copy16 && c.candidates);
    c = choose_device_plan(r, o, budget(full_4096 - 1));
    EXPECT_EQ(c.tile, 2048);
    EXPECT_TRUE(c.candidates);
    // Less than the extras at the smallest tile: the exact table resident, at the largest side
    // that fits.
    const std::uint64_t full_256 = layout_bytes(V, d, o, 40, true, 256, true);
    c = choose_device_plan(r, o, budget(full_256 - 1));
    EXPECT_TRUE(c.resident);
    EXPECT_FALSE(c.copy16 || c.candidates);
    EXPECT_EQ(c.plan.k, 10);
    EXPECT_EQ(c.tile, largest_fitting_side(full_256 - 1, [&](std::int64_t t) {
                  return layout_bytes(V, d, o, 10, false, t, true);
              }));
    // No resident table at all: streamed with the raw 16-bit copy (uncentred), no candidates.
    const std::uint64_t exact_256 = layout_bytes(V, d, o, 10, false, 256, true);
    c = choose_device_plan(r, o, budget(exact_256 - 1));
    EXPECT_FALSE(c.resident);
    EXPECT_TRUE(c.copy16);
    EXPECT_FALSE(c.candidates);
    EXPECT_EQ(c.tile, largest_fitting_side(exact_256 - 1, [&](std::int64_t t) {
                  return layout_bytes(V, d, o, 10, true, t, false);
              }));
}

TEST(DeviceMemoryPlan, CentredAutoPlansNoCopyAndExactNoExtras) {
    AllPairsOptions o = options(Precision::kAuto);
    o.center = std::vector<double>(64, 0.5);
    DevicePlanChoice c = choose_device_plan(request(5000, 64, o), o, budget(kPlenty));
    EXPECT_FALSE(c.copy16);  // centred rows are not the stored rows: no raw product
    EXPECT_TRUE(c.candidates);

    o.precision = Precision::kTf32;  // tf32 products of normalised rows: no 16-bit copy
    o.center.reset();
    c = choose_device_plan(request(5000, 64, o), o, budget(kPlenty));
    EXPECT_FALSE(c.copy16);
    EXPECT_TRUE(c.candidates);

    const AllPairsOptions exact = options(Precision::kExact);
    c = choose_device_plan(request(5000, 64, exact), exact, budget(kPlenty));
    EXPECT_FALSE(c.copy16 || c.candidates);
}

TEST(DeviceMemoryPlan, BlockRowsIsTheOnlySideTried) {
    AllPairsOptions o = options(Precision::kExact);
    o.block_rows = 1000;
    const DevicePlanRequest r = request(5000, 64, o);
    EXPECT_EQ(choose_device_plan(r, o, budget(kPlenty)).tile, 1000);
    const std::uint64_t resident = layout_bytes(5000, 64, o, 10, false, 1000, true);
    const DevicePlanChoice c = choose_device_plan(r, o, budget(resident - 1));
    EXPECT_EQ(c.tile, 1000);
    EXPECT_FALSE(c.resident);
    o.block_rows = 100000;  // capped at the rows
    EXPECT_EQ(choose_device_plan(r, o, budget(kPlenty)).tile, 5000);
}

TEST(DeviceMemoryPlan, OnlyListsOverTheColumnFoldHoldATransposedTile) {
    const AllPairsOptions wide = options(Precision::kExact, 200);
    EXPECT_TRUE(choose_device_plan(request(20000, 64, wide), wide, budget(kPlenty)).transposed);
    // One block: no off-diagonal tile to transpose.
    EXPECT_FALSE(choose_device_plan(request(300, 64, wide), wide, budget(kPlenty)).transposed);
    const AllPairsOptions narrow = options(Precision::kExact, kColumnFoldMaxSlots);
    EXPECT_FALSE(
        choose_device_plan(request(20000, 64, narrow), narrow, budget(kPlenty)).transposed);
    // tf32 re-scores 4K candidates: K = 40 lists are 160 slots wide.
    const AllPairsOptions fast = options(Precision::kTf32, 40);
    const DevicePlanChoice c = choose_device_plan(request(20000, 64, fast), fast, budget(kPlenty));
    EXPECT_TRUE(c.candidates && c.transposed);
}

TEST(DeviceMemoryPlan, TheChoiceNeverExceedsTheBudgetAndGrowsWithIt) {
    std::mt19937_64 rng(std::random_device{}());
    const Precision kinds[] = {Precision::kExact, Precision::kAuto, Precision::kTf32,
                               Precision::kBf16, Precision::kFp16};
    for (int trial = 0; trial < 300; ++trial) {
        const std::int64_t V = 2 + static_cast<std::int64_t>(rng() % 300000);
        const std::int64_t d = 1 + static_cast<std::int64_t>(rng() % 5000);
        const AllPairsOptions o = options(kinds[rng() % 5], 1 + static_cast<int>(rng() % 300));
        const DevicePlanRequest r = request(V, d, o);
        const std::uint64_t limit = (rng() % (8ull << 30)) + 1;
        SCOPED_TRACE(std::to_string(V) + " x " + std::to_string(d) + ", k " + std::to_string(o.k) +
                     ", budget " + std::to_string(limit));
        try {
            const DevicePlanChoice c = choose_device_plan(r, o, budget(limit));
            EXPECT_LE(c.plan.total(c.tile, c.resident), limit);
            EXPECT_LE(c.plan.total(c.tile, c.resident), largest_device_plan_bytes(V, d, o));
            // Twice the budget never gives a plan that reads the table more often.
            const DevicePlanChoice more = choose_device_plan(r, o, budget(2 * limit));
            EXPECT_TRUE(more.resident || !c.resident);
        } catch (const ResourceError&) {
            // Only when even the smallest streamed exact tiling is over the budget.
            EXPECT_GT(
                layout_bytes(V, d, o, r.k, false, std::min<std::int64_t>(V, kMinDeviceTile), false),
                limit);
        }
    }
}

TEST(DeviceMemoryPlan, TooSmallABudgetNamesTheSizesAndWhatToChange) {
    AllPairsOptions o = options(Precision::kExact);
    DeviceBudget b;
    b.asked = 1ull << 30;
    b.usable = 1000;
    b.free_bytes = 1000 + kDeviceReserve;
    try {
        choose_device_plan(request(100000, 512, o), o, b);
        FAIL() << "a 1000-byte budget fitted a plan";
    } catch (const ResourceError& e) {
        const std::string m = e.what();
        // The device's free memory is the limit, not the budget: raising it would not help.
        for (const char* part : {"100000 x 512 rows", "tile side 256", "k=10", "budget is 0.0 MiB",
                                 "device memory budget 1024.0 MiB", "free device memory 256.0 MiB",
                                 "free memory on the device", "--backend cpu"})
            EXPECT_NE(m.find(part), std::string::npos) << part << " in: " << m;
        EXPECT_EQ(m.find("--block-rows"), std::string::npos) << m;
        EXPECT_EQ(m.find("raise --device-memory-budget"), std::string::npos) << m;
        // The parts named add up to the total named (to the 0.1 MiB they are printed with).
        const auto mib_after = [&](const std::string& label) {
            const std::size_t at = m.find(label);
            EXPECT_NE(at, std::string::npos) << label << " in: " << m;
            return at == std::string::npos ? 0.0 : std::stod(m.substr(at + label.size()));
        };
        const double parts = mib_after("per-row results ") + mib_after("duplicate pairs ") +
                             mib_after("tiles ") + mib_after("row blocks ") +
                             mib_after("the rest ");
        EXPECT_NEAR(parts, mib_after("streamed) needs "), 0.26) << m;
        EXPECT_NE(m.find("--max-dup-pairs"), std::string::npos) << m;
    }
    b.asked = 1000;
    b.usable = 1ull << 30;
    b.free_bytes = b.usable + kDeviceReserve;
    try {
        choose_device_plan(request(100000, 512, o), o, b);
        FAIL() << "a 1000-byte budget fitted a plan";
    } catch (const ResourceError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("device memory budget 0.0 MiB"), std::string::npos) << m;
        EXPECT_NE(m.find("raise --device-memory-budget"), std::string::npos) << m;
        EXPECT_EQ(m.find("free memory on the device"), std::string::npos) << m;
    }
    b.asked = kWholeDeviceBudget;
    b.usable = 1000;
    b.free_bytes = 1000 + kDeviceReserve;
    try {
        choose_device_plan(request(100000, 512, o), o, b);
        FAIL() << "a 1000-byte device fitted a plan";
    } catch (const ResourceError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("budget is 0.0 MiB (all the device has: free device memory 256.0 MiB"),
                  std::string::npos)
            << m;
        EXPECT_NE(m.find("free memory on the device"), std::string::npos) << m;
        EXPECT_EQ(m.find("device memory budget"), std::string::npos) << m;
    }
    o.block_rows = 4096;
    try {
        choose_device_plan(request(100000, 512, o), o, b);
        FAIL() << "a 1000-byte budget fitted a plan";
    } catch (const ResourceError& e) {
        EXPECT_NE(std::string(e.what()).find("tile side 4096"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("lower --block-rows"), std::string::npos) << e.what();
    }
}

// analyze's default: the device's free memory less the reserve bounds the plan, and nothing else.
TEST(DeviceMemoryPlan, TheWholeDeviceBudgetPlansWithTheFreeMemory) {
    std::mt19937_64 rng(std::random_device{}());
    for (int trial = 0; trial < 200; ++trial) {
        const Precision p = trial % 2 ? Precision::kAuto : Precision::kExact;
        const AllPairsOptions o = options(p);
        const std::int64_t V = 2 + static_cast<std::int64_t>(rng() % 300000);
        const std::int64_t d = 1 + static_cast<std::int64_t>(rng() % 4096);
        DeviceBudget whole;
        whole.asked = kWholeDeviceBudget;
        whole.usable = (rng() % (64ull << 30)) + 1;
        whole.free_bytes = whole.usable + kDeviceReserve;
        DeviceBudget same = whole;
        same.asked = whole.usable;
        SCOPED_TRACE(std::to_string(V) + " x " + std::to_string(d) + ", usable " +
                     std::to_string(whole.usable));
        EXPECT_EQ(whole.limit(), whole.usable);
        std::optional<DevicePlanChoice> a, b;
        try {
            a = choose_device_plan(request(V, d, o), o, whole);
        } catch (const ResourceError&) {
        }
        try {
            b = choose_device_plan(request(V, d, o), o, same);
        } catch (const ResourceError&) {
        }
        ASSERT_EQ(a.has_value(), b.has_value());
        if (!a) continue;
        EXPECT_EQ(a->tile, b->tile);
        EXPECT_EQ(a->resident, b->resident);
        EXPECT_EQ(a->copy16, b->copy16);
        EXPECT_EQ(a->candidates, b->candidates);
        EXPECT_LE(a->plan.total(a->tile, a->resident), whole.usable);
    }
}

TEST(DeviceMemoryPlan, AnUnforeseenAllocationFailureNamesTheSizesAndWhatToChange) {
    const std::string m = out_of_device_memory_message(3 * kMiB, 1, 5 * kMiB / 2, 80 * 1024 * kMiB);
    EXPECT_EQ(m,
              "out of device memory: 3.0 MiB more on CUDA device 1, which has 2.5 MiB free of "
              "81920.0 MiB (another process may be using it): lower --device-memory-budget, "
              "--block-rows or --topk, or use --backend cpu");
}

TEST(DeviceMemoryPlan, BudgetFromTheOptions) {
    AllPairsOptions o;
    EXPECT_EQ(device_budget(o), kDefaultDeviceBudget);
    o.memory_budget = 123;
    EXPECT_EQ(device_budget(o), 123u);
    o.device_memory_budget = 456;
    EXPECT_EQ(device_budget(o), 456u);
    o.device_memory_budget = kWholeDeviceBudget;
    EXPECT_EQ(device_budget(o), kWholeDeviceBudget);
    EXPECT_EQ(mib_text(3 * kMiB / 2), "1.5 MiB");
}

}  // namespace
}  // namespace embgeom::engine
