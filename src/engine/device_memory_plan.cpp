#include "engine/device_memory_plan.hpp"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "embgeom/errors.hpp"
#include "engine/precision_policy.hpp"

namespace embgeom::engine {

std::uint64_t DeviceMemoryPlan::per_row() const {
    return static_cast<std::uint64_t>(n) *
           (2 + sizeof(float) + (row_sums ? sizeof(long long) : 0) +
            static_cast<std::uint64_t>(k) * (sizeof(float) + sizeof(std::int64_t)));
}

std::uint64_t DeviceMemoryPlan::fixed() const {
    return per_row() + 2ull * d * sizeof(double) + static_cast<std::uint64_t>(bins) * 8 + 24 +
           (radius ? static_cast<std::uint64_t>(n) * sizeof(float) : 0) +
           static_cast<std::uint64_t>(pair_capacity) * kDevicePairBytes +
           (copy16 ? static_cast<std::uint64_t>(n) * sizeof(double) + 8 : 0);
}

std::uint64_t DeviceMemoryPlan::table(std::int64_t t, bool resident) const {
    return static_cast<std::uint64_t>(resident ? n : 2 * t) * d *
           (sizeof(float) + (copy16 ? sizeof(std::uint16_t) : 0));
}

std::uint64_t DeviceMemoryPlan::tiles(std::int64_t t) const {
    return static_cast<std::uint64_t>(t) * t * sizeof(float) * (transposed(t) ? 2 : 1) +
           static_cast<std::uint64_t>(t) * 2 * sizeof(long long);
}

std::uint64_t device_budget(const AllPairsOptions& opt) {
    return opt.device_memory_budget ? opt.device_memory_budget
           : opt.memory_budget      ? opt.memory_budget
                                    : kDefaultDeviceBudget;
}

std::int64_t device_pair_capacity(const AllPairsOptions& opt) {
    const std::int64_t extra_pair = may_rescore(opt.precision) ? 1 : 0;
    return std::max<std::int64_t>(
        1, std::min<std::int64_t>(opt.max_dup_pairs + extra_pair, kMaxDevicePairs));
}

bool may_plan_copy16(const AllPairsOptions& opt) {
    return may_use_copy16(opt.precision) && !(opt.center && opt.precision == Precision::kAuto);
}

std::int64_t first_tile_side(const AllPairsOptions& opt, std::int64_t rows) {
    return opt.block_rows > 0 ? std::min({opt.block_rows, kMaxDeviceTile, rows})
                              : std::min(rows, kDefaultDeviceTile);
}

std::string mib_text(std::uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / kMiB);
    return buf;
}

std::string out_of_device_memory_message(std::uint64_t bytes, int device, std::uint64_t free_bytes,
                                         std::uint64_t total_bytes) {
    return "out of device memory: " + mib_text(bytes) + " more on CUDA device " +
           std::to_string(device) + ", which has " + mib_text(free_bytes) + " free of " +
           mib_text(total_bytes) +
           " (another process may be using it): lower --device-memory-budget, --block-rows or "
           "--topk, or use --backend cpu";
}

namespace {

DeviceMemoryPlan base_plan(std::int64_t rows, std::int64_t cols, const AllPairsOptions& opt) {
    DeviceMemoryPlan p;
    p.n = rows;
    p.d = cols;
    p.bins = opt.hist_bins;
    p.row_sums = opt.accumulate_row_sums;
    p.pair_capacity = device_pair_capacity(opt);
    return p;
}

// Where the limit came from, for the message of a plan that does not fit.
std::string budget_text(const DeviceBudget& budget) {
    const std::string free_text = "free device memory " + mib_text(budget.free_bytes) + " less a " +
                                  mib_text(kDeviceReserve) + " reserve";
    if (budget.asked == kWholeDeviceBudget) return "all the device has: " + free_text;
    return "device memory budget " + mib_text(budget.asked) + ", " + free_text;
}

}  // namespace

DevicePlanChoice choose_device_plan(const DevicePlanRequest& req, const AllPairsOptions& opt,
                                    const DeviceBudget& budget) {
    DeviceMemoryPlan p = base_plan(req.rows, req.cols, opt);
    p.k = req.k;
    p.radius = req.csls;
    const std::uint64_t limit = budget.limit();

    std::vector<std::int64_t> sides{first_tile_side(opt, req.rows)};
    if (opt.block_rows == 0)
        for (std::int64_t t = sides[0]; t > kMinDeviceTile;) {
            t = std::max(kMinDeviceTile, t / 2);
            sides.push_back(t);
        }
    struct Layout {
        bool resident, copy16, candidates;
    };
    const bool copy16 = may_plan_copy16(opt);
    const bool rescore = may_rescore(opt.precision);
    std::vector<Layout> layouts;
    if (copy16 || rescore) layouts.push_back({true, copy16, rescore});
    layouts.push_back({true, false, false});
    if (copy16 && !opt.center) layouts.push_back({false, true, false});  // streamed: raw only
    layouts.push_back({false, false, false});
    for (const Layout& l : layouts) {
        p.k = l.candidates ? std::max(req.k, req.candidate_width) : req.k;
        p.copy16 = l.copy16;
        for (const std::int64_t t : sides)
            if (p.total(t, l.resident) <= limit)
                return {t, l.resident, l.copy16, l.candidates, p.transposed(t), p};
    }
    p.k = req.k;
    p.copy16 = false;
    const std::int64_t t = sides.back();
    const std::uint64_t pairs = static_cast<std::uint64_t>(p.pair_capacity) * kDevicePairBytes;
    throw ResourceError(
        "CUDA all-pairs: not enough device memory for " + std::to_string(req.rows) + " x " +
        std::to_string(req.cols) + " rows: the smallest tiling (tile side " + std::to_string(t) +
        " rows, streamed) needs " + mib_text(p.total(t, false)) + " (per-row results " +
        mib_text(p.per_row()) + " with k=" + std::to_string(req.k) + ", duplicate pairs " +
        mib_text(pairs) + ", tiles " + mib_text(p.tiles(t)) + ", row blocks " +
        mib_text(p.table(t, false)) + ", the rest " + mib_text(p.fixed() - p.per_row() - pairs) +
        ") but the budget is " + mib_text(limit) + " (" + budget_text(budget) + "); " +
        (budget.asked < budget.usable
             ? "raise --device-memory-budget"
             : "free memory on the device (another process may be using it)") +
        (opt.block_rows > 0 ? ", lower --block-rows" : "") +
        ", lower --topk or --max-dup-pairs, or use --backend cpu");
}

std::uint64_t largest_device_plan_bytes(std::int64_t rows, std::int64_t cols,
                                        const AllPairsOptions& opt) {
    if (rows <= 0) return 0;
    DeviceMemoryPlan p = base_plan(rows, cols, opt);
    const std::int64_t k = std::min<std::int64_t>(opt.k, rows - 1);
    p.copy16 = may_plan_copy16(opt);
    p.k = may_rescore(opt.precision) ? std::max<std::int64_t>(k, candidate_count(opt.k, rows)) : k;
    return p.total(first_tile_side(opt, rows), true);
}

}  // namespace embgeom::engine
