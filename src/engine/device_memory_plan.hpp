#pragma once
// How the CUDA all-pairs engine (src/cuda/all_pairs_engine.cpp) spends device memory and which
// plan it picks within a budget. Pure arithmetic on sizes, host-only and free of CUDA headers, so
// every build (CI's has no GPU) tests the choice directly (tests/test_device_memory_plan.cpp).
#include <cstdint>
#include <string>

#include "embgeom/backend.hpp"

namespace embgeom::engine {

constexpr std::uint64_t kMiB = 1ull << 20;
/// The device budget when the options name none.
constexpr std::uint64_t kDefaultDeviceBudget = 1ull << 30;
/// Left free for the CUDA context, cuBLAS's workspace and kernel local memory.
constexpr std::uint64_t kDeviceReserve = 256 * kMiB;
/// At most 2^30 pairs per tile keeps tile_pairs' 32-bit shared counts and its per-tile 64-bit
/// cos^2 sum (<= 2^30 * 2^24) from overflowing.
constexpr std::int64_t kMaxDeviceTile = 32768;
/// 8192^2 floats = 256 MiB per tile buffer: GEMMs this large run at full speed; larger tiles only
/// cost memory.
constexpr std::int64_t kDefaultDeviceTile = 8192;
constexpr std::int64_t kMinDeviceTile = 256;
/// Duplicate pairs copied back per round (1.5 MiB of device memory); a tile with more pairs takes
/// several rounds.
constexpr std::int64_t kMaxDevicePairs = 1 << 16;
/// sizeof(kernels::TilePair) and kernels::kColFoldMaxK (static_asserts in the engine keep them
/// equal).
constexpr std::uint64_t kDevicePairBytes = 24;
constexpr std::int64_t kColumnFoldMaxSlots = 128;

/// Device bytes the engine holds, by part, for a tile side t. k is the width of the device lists
/// (K' when re-scoring); copy16 adds the 16-bit copy of the rows and the inverse norms.
struct DeviceMemoryPlan {
    std::int64_t n = 0, d = 0, k = 0, pair_capacity = 0;
    int bins = 0;
    bool row_sums = false;
    bool copy16 = false;
    bool radius = false;  ///< CSLS mode: the radii, one float per row

    std::int64_t blocks(std::int64_t t) const { return (n + t - 1) / t; }
    /// Per-row results: validity and zero-row flags, row means, row sums, the lists.
    std::uint64_t per_row() const;
    /// Everything that does not depend on the tile side.
    std::uint64_t fixed() const;
    /// The normalised rows (and their 16-bit copy): all n resident, else two blocks of t.
    std::uint64_t table(std::int64_t t, bool resident) const;
    /// Lists too long for the column fold fold the rows of J from a transposed copy of the tile.
    bool transposed(std::int64_t t) const { return blocks(t) > 1 && k > kColumnFoldMaxSlots; }
    /// The tile (and its transpose) and the per-row duplicate counts and offsets of a tile.
    std::uint64_t tiles(std::int64_t t) const;
    std::uint64_t total(std::int64_t t, bool resident) const {
        return fixed() + table(t, resident) + tiles(t);
    }
};

/// opt's device_memory_budget (kWholeDeviceBudget: no limit but the device's), else its
/// memory_budget, else kDefaultDeviceBudget.
std::uint64_t device_budget(const AllPairsOptions& opt);

/// Duplicate pairs held on the device per round; re-scoring duplicates reads one pair more than
/// can be kept (the engine's collect_duplicates).
std::int64_t device_pair_capacity(const AllPairsOptions& opt);

/// Whether a plan may hold the 16-bit copy: auto on centred rows can only end as tf32 or exact.
bool may_plan_copy16(const AllPairsOptions& opt);

/// The tile side a plan tries first: --block-rows (capped), else the largest default.
std::int64_t first_tile_side(const AllPairsOptions& opt, std::int64_t rows);

/// What the plan is chosen for.
struct DevicePlanRequest {
    std::int64_t rows = 0, cols = 0;
    std::int64_t k = 0;                ///< neighbours kept: min(opt.k, valid rows - 1)
    std::int64_t candidate_width = 0;  ///< list width when re-scoring (K' >= k)
    bool csls = false;                 ///< CSLS mode holds the radii
};

/// The device memory the plan may use and where that limit came from (for the error message).
struct DeviceBudget {
    std::uint64_t asked = 0;       ///< device_budget(opt)
    std::uint64_t usable = 0;      ///< free device memory less kDeviceReserve (or a share's)
    std::uint64_t free_bytes = 0;  ///< free device memory, as the device reported it
    std::uint64_t limit() const { return asked < usable ? asked : usable; }
};

struct DevicePlanChoice {
    std::int64_t tile = 0;
    bool resident = false;    ///< the whole normalised table stays on the device
    bool copy16 = false;      ///< a 16-bit copy of the rows (+ inverse norms)
    bool candidates = false;  ///< K' lists for re-scoring (resident plans only)
    bool transposed = false;  ///< a transposed tile buffer (lists over kColumnFoldMaxSlots)
    DeviceMemoryPlan plan;    ///< the sizes it was chosen by
};

/// The plan Engine::plan_memory runs: the first that fits budget.limit() of the layouts
/// (resident with a fast request's extras; resident exact; streamed raw 16-bit copy, uncentred;
/// streamed exact), each at the tile sides first_tile_side(opt), then halving down to
/// kMinDeviceTile (only the first when opt.block_rows is set). A resident table is read once and
/// a streamed one once per block row, so any resident tiling beats a streaming one; re-scoring
/// needs every row on the device (candidates can be anywhere), so streamed plans hold no
/// candidate lists.
/// @throws ResourceError naming every size, the budget and what to change when none fits.
DevicePlanChoice choose_device_plan(const DevicePlanRequest& req, const AllPairsOptions& opt,
                                    const DeviceBudget& budget);

/// Device bytes of the largest plan choose_device_plan could make for a rows x cols table with
/// opt: its first layout at its first tile side, every row valid.
std::uint64_t largest_device_plan_bytes(std::int64_t rows, std::int64_t cols,
                                        const AllPairsOptions& opt);

/// "12.5 MiB".
std::string mib_text(std::uint64_t bytes);

/// The one line for a device allocation the plan did not foresee failing (another process took
/// the memory, or a pass outside the plan): the bytes asked for, the device's free and total
/// memory, and what to change.
std::string out_of_device_memory_message(std::uint64_t bytes, int device, std::uint64_t free_bytes,
                                         std::uint64_t total_bytes);

}  // namespace embgeom::engine
