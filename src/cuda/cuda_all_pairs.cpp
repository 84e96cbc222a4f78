#include "cuda/cuda_all_pairs.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>

#include "column_sums.cuh"
#include "convert_rows.cuh"
#include "csls_scores.cuh"
#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/pinned_allocator.hpp"
#include "embgeom/errors.hpp"
#include "engine/candidate_rescore.hpp"
#include "engine/duplicate_list.hpp"
#include "engine/fixed_point.hpp"
#include "engine/padded_result.hpp"
#include "engine/precision_policy.hpp"
#include "exact16_check.cuh"
#include "geometry/csls.hpp"
#include "mask_invalid.cuh"
#include "mirror_upper.cuh"
#include "normalize_rows.cuh"
#include "rescore_candidates.cuh"
#include "row_means.cuh"
#include "scale_tile.cuh"
#include "tile_col_fold.cuh"
#include "tile_pairs.cuh"
#include "tile_row_fold.cuh"
#include "transpose.cuh"

namespace embgeom {
namespace {

namespace kn = kernels;
using engine::Raw16Format;

static_assert(kn::kTopkMaxK == engine::kMaxCandidates,
              "the precision policy sizes candidate lists by the top-K kernel's limit");

constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kDefaultBudget = 1ull << 30;
// Left free for the CUDA context, cuBLAS's workspace and kernel local memory.
constexpr std::uint64_t kDeviceReserve = 256 * kMiB;
// At most 2^30 pairs per tile keeps tile_pairs' 32-bit shared counts and its per-tile 64-bit
// cos^2 sum (<= 2^30 * 2^24) from overflowing.
constexpr std::int64_t kMaxTile = 32768;
// 8192^2 floats = 256 MiB per tile buffer: GEMMs this large run at full speed; larger tiles only
// cost memory.
constexpr std::int64_t kDefaultMaxTile = 8192;
constexpr std::int64_t kMinTile = 256;
// Duplicate pairs copied back per round (1.5 MiB of device memory); a tile with more pairs takes
// several rounds.
constexpr std::int64_t kMaxDevicePairs = 1 << 16;

std::string mib(std::uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / kMiB);
    return buf;
}

// Device bytes the engine holds, by part, for a tile side t. k is the width of the device lists
// (K' when re-scoring); copy16 adds the 16-bit copy of the rows and the inverse norms.
struct MemoryPlan {
    std::int64_t n = 0, d = 0, k = 0, pair_capacity = 0;
    int bins = 0;
    bool row_sums = false;
    bool copy16 = false;
    bool radius = false;  // CSLS mode: the radii, one float per row

    std::int64_t blocks(std::int64_t t) const { return (n + t - 1) / t; }
    std::uint64_t per_row() const {
        return static_cast<std::uint64_t>(n) *
               (2 + sizeof(float) + (row_sums ? sizeof(long long) : 0) +
                static_cast<std::uint64_t>(k) * (sizeof(float) + sizeof(std::int64_t)));
    }
    std::uint64_t fixed() const {
        return per_row() + 2ull * d * sizeof(double) + static_cast<std::uint64_t>(bins) * 8 + 24 +
               (radius ? static_cast<std::uint64_t>(n) * sizeof(float) : 0) +
               static_cast<std::uint64_t>(pair_capacity) * sizeof(kn::TilePair) +
               (copy16 ? static_cast<std::uint64_t>(n) * sizeof(double) + 8 : 0);
    }
    std::uint64_t table(std::int64_t t, bool resident) const {
        return static_cast<std::uint64_t>(resident ? n : 2 * t) * d *
               (sizeof(float) + (copy16 ? sizeof(std::uint16_t) : 0));
    }
    /// Lists too long for the column fold fold the rows of J from a transposed copy of the tile.
    bool transposed(std::int64_t t) const { return blocks(t) > 1 && k > kn::kColFoldMaxK; }
    std::uint64_t tiles(std::int64_t t) const {
        return static_cast<std::uint64_t>(t) * t * sizeof(float) * (transposed(t) ? 2 : 1) +
               static_cast<std::uint64_t>(t) * 2 * sizeof(long long);
    }
    std::uint64_t total(std::int64_t t, bool resident) const {
        return fixed() + table(t, resident) + tiles(t);
    }
};

// What Engine::plan_memory and all_pairs_largest_plan_bytes both derive from the options.

// Duplicate pairs held on the device per round; re-scoring duplicates reads one pair more than
// can be kept (see collect_duplicates).
std::int64_t device_pair_capacity(const AllPairsOptions& opt) {
    const std::int64_t extra_pair = engine::may_rescore(opt.precision) ? 1 : 0;
    return std::max<std::int64_t>(
        1, std::min<std::int64_t>(opt.max_dup_pairs + extra_pair, kMaxDevicePairs));
}

// Whether a plan may hold the 16-bit copy: auto on centred rows can only end as tf32 or exact.
bool may_plan_copy16(const AllPairsOptions& opt) {
    return engine::may_use_copy16(opt.precision) &&
           !(opt.center && opt.precision == Precision::kAuto);
}

// The tile side a plan tries first: --block-rows, else the largest default.
std::int64_t first_tile_side(const AllPairsOptions& opt, std::int64_t rows) {
    return opt.block_rows > 0 ? std::min({opt.block_rows, kMaxTile, rows})
                              : std::min(rows, kDefaultMaxTile);
}

// CSLS mode (csls_radius given): the same plan, pass 0 and tile loop; each exact tile of cosines
// becomes CSLS scores (kernels/csls_scores.cu) before the top-K fold, and nothing else is folded.
// The caller passes options asking for exact float32 and no extras (see cuda_csls_neighbors).
class Engine {
  public:
    Engine(CudaResources& res, RowSource& source, const std::vector<std::uint8_t>& valid,
           const AllPairsOptions& opt, const DeviceTable* held,
           const std::vector<float>* csls_radius = nullptr, const EngineShare& share = {},
           AllPairsPartial* partial = nullptr)
        : source_(source),
          held_(held),
          valid_(valid),
          opt_(opt),
          csls_radius_(csls_radius),
          share_(share),
          partial_(partial),
          n_(source.rows()),
          d_(source.cols()),
          stream_(res.compute_stream()),
          cublas_(res.cublas()) {
        if (held_)
            EMBGEOM_EXPECTS(
                held_->rows() == n_ && held_->cols() == d_ && held_->device() == res.device(),
                "the held table is the source's, on the engine's device");
    }

    AllPairsResult run();
    /// The plan held the whole normalised table on the device (after run()).
    bool resident() const { return resident_; }

  private:
    void plan_memory();
    void allocate();
    void load_block(std::int64_t first, std::int64_t count, float* dst, bool check,
                    engine::Raw16Tracker* tracker, Raw16Format format, std::uint16_t* dst16);
    engine::RawExactness read_exactness();
    void resolve_path(const engine::Raw16Tracker* tracker);
    void allocate_lists();
    void tile_product(std::int64_t i0, std::int64_t ti, const float* a, const std::uint16_t* a16,
                      std::int64_t j0, std::int64_t tj, const float* b, const std::uint16_t* b16);
    void process_tile(std::int64_t i0, std::int64_t ti, const float* a, const std::uint16_t* a16,
                      std::int64_t j0, std::int64_t tj, const float* b, const std::uint16_t* b16);
    void fold_rows(const float* tile, std::int64_t rows, std::int64_t cols, std::int64_t row0,
                   std::int64_t col0, const kn::TilePairStats* pairs);
    void collect_duplicates(std::int64_t i0, std::int64_t ti, const float* a, std::int64_t j0,
                            std::int64_t tj, const float* b, long long tile_total);
    void finish(AllPairsResult& out);
    void sync() { EMBGEOM_CUDA_TRY(cudaStreamSynchronize(stream_)); }
    bool owns(std::int64_t tile_pair) const { return tile_pair % share_.count == share_.index; }

    RowSource& source_;
    const DeviceTable* held_;  // source's raw rows on this device, or null: read source
    const std::vector<std::uint8_t>& valid_;
    const AllPairsOptions& opt_;
    const std::vector<float>* csls_radius_;  // [n] in CSLS mode, else null
    const EngineShare share_;
    AllPairsPartial* partial_;
    const std::int64_t n_, d_;
    cudaStream_t stream_;
    cublasHandle_t cublas_;

    std::int64_t n_valid_ = 0;
    int k_ = 0;   // neighbours in the result: min(opt.k, n_valid - 1)
    int kc_ = 0;  // width of the device lists: K' when the path re-scores, else k_
    std::int64_t tile_ = 0;
    bool resident_ = false;
    bool copy16_ = false;      // the plan holds a 16-bit copy of the rows (+ inverse norms)
    bool candidates_ = false;  // the plan affords K' lists (and is resident, for re-scoring)
    bool transposed_ = false;  // the plan holds a transposed tile (lists over kColFoldMaxK)
    bool check_raw_ = false;   // pass 0 checks whether the raw rows are exact in 16 bits
    PrecisionPath path_ = PrecisionPath::kExact;
    std::int64_t pair_capacity_ = 0;
    float dup_min_ = 0.0f;       // a pair is a duplicate when its (re-scored) cosine is >= this
    float dup_scan_min_ = 0.0f;  // tile_pairs' test: dup_min_ less the margin when re-scoring

    DeviceBuffer<std::uint8_t> valid_dev_, zero_row_dev_;
    DeviceBuffer<double> center_dev_, sum_dev_;
    DeviceBuffer<long long> row_sum_dev_, bad_row_dev_;
    DeviceBuffer<float> table_dev_, tile_dev_, tile_t_dev_, row_mean_dev_, top_sim_dev_;
    DeviceBuffer<std::int64_t> top_idx_dev_;
    DeviceBuffer<unsigned long long> hist_dev_, scalars_dev_;
    DeviceBuffer<long long> dup_count_dev_, dup_offset_dev_;
    DeviceBuffer<kn::TilePair> pairs_dev_;
    DeviceBuffer<std::uint16_t> table16_dev_;
    DeviceBuffer<double> inv_norm_dev_;
    DeviceBuffer<float> radius_dev_;
    DeviceBuffer<unsigned> exact_flags_dev_;
    PinnedAllocator pinned_;
    /// The rows of every load_block, in order, when the table is not held.
    std::unique_ptr<BlockPrefetcher> prefetch_;
    PinnedBuffer<float> sink_tile_;
    PinnedBuffer<unsigned long long> scalars_host_;

    unsigned __int128 cos_sq_fixed_ = 0;
    unsigned long long dup_total_ = 0;
    std::vector<DuplicatePair> duplicates_;
    double gflop_ = 0.0;
};

void Engine::plan_memory() {
    MemoryPlan p;
    p.n = n_;
    p.d = d_;
    p.k = k_;
    p.bins = opt_.hist_bins;
    p.row_sums = opt_.accumulate_row_sums;
    p.pair_capacity = pair_capacity_;
    p.radius = csls_radius_ != nullptr;

    std::size_t free_bytes = 0, total_bytes = 0;
    EMBGEOM_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    const std::uint64_t asked = all_pairs_device_budget(opt_);
    const std::uint64_t usable =
        share_.usable_bytes ? *share_.usable_bytes
                            : (free_bytes > kDeviceReserve ? free_bytes - kDeviceReserve : 0);
    const std::uint64_t budget = std::min<std::uint64_t>(asked, usable);

    std::vector<std::int64_t> sides{first_tile_side(opt_, n_)};
    if (opt_.block_rows == 0)
        for (std::int64_t t = sides[0]; t > kMinTile;) {
            t = std::max(kMinTile, t / 2);
            sides.push_back(t);
        }
    // A resident table is read from the source once; streaming reads it again for every block
    // row of tiles, so any resident tiling beats a streaming one. Within each, the extras a fast
    // request may use come first. Re-scoring needs every row on the device (candidates can be
    // anywhere in the table), so streamed plans never hold candidate lists; the policy then
    // falls back to exact, or to a raw 16-bit product when the table allows one.
    struct Layout {
        bool resident, copy16, candidates;
    };
    const bool copy16 = may_plan_copy16(opt_);
    const bool rescore = engine::may_rescore(opt_.precision) && share_.allow_rescore;
    std::vector<Layout> layouts;
    if (copy16 || rescore) layouts.push_back({true, copy16, rescore});
    layouts.push_back({true, false, false});
    if (copy16 && !opt_.center) layouts.push_back({false, true, false});  // streamed: raw only
    layouts.push_back({false, false, false});
    const std::int64_t width_rescored =
        std::max<std::int64_t>(k_, engine::candidate_count(opt_.k, n_valid_));
    for (const Layout& l : layouts) {
        p.k = l.candidates ? width_rescored : k_;
        p.copy16 = l.copy16;
        for (std::int64_t t : sides) {
            if (p.total(t, l.resident) <= budget) {
                tile_ = t;
                resident_ = l.resident;
                copy16_ = l.copy16;
                candidates_ = l.candidates;
                transposed_ = p.transposed(t);
                return;
            }
        }
    }
    p.k = k_;
    p.copy16 = false;
    const std::int64_t t = sides.back();
    throw ResourceError("CUDA all-pairs: not enough device memory for " + std::to_string(n_) +
                        " x " + std::to_string(d_) + " rows: the smallest tiling (tile side " +
                        std::to_string(t) + " rows, streamed) needs " + mib(p.total(t, false)) +
                        " (per-row results " + mib(p.per_row()) + " with k=" + std::to_string(k_) +
                        ", tiles " + mib(p.tiles(t)) + ", row blocks " + mib(p.table(t, false)) +
                        ") but the budget is " + mib(budget) + " (device memory budget " +
                        mib(asked) + ", free device memory " + mib(free_bytes) + " less a " +
                        mib(kDeviceReserve) + " reserve); raise --device-memory-budget" +
                        (opt_.block_rows > 0 ? ", lower --block-rows" : "") +
                        ", lower --topk, or use --backend cpu");
}

void Engine::allocate() {
    valid_dev_ = DeviceBuffer<std::uint8_t>(n_);
    EMBGEOM_CUDA_TRY(
        cudaMemcpyAsync(valid_dev_.data(), valid_.data(), n_, cudaMemcpyHostToDevice, stream_));
    if (opt_.center) {
        center_dev_ = DeviceBuffer<double>(d_);
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(center_dev_.data(), opt_.center->data(),
                                         sizeof(double) * d_, cudaMemcpyHostToDevice, stream_));
    }
    sum_dev_ = DeviceBuffer<double>(d_);
    EMBGEOM_CUDA_TRY(cudaMemsetAsync(sum_dev_.data(), 0, sum_dev_.bytes(), stream_));
    if (csls_radius_) {
        radius_dev_ = DeviceBuffer<float>(n_);
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(radius_dev_.data(), csls_radius_->data(),
                                         radius_dev_.bytes(), cudaMemcpyHostToDevice, stream_));
    }
    row_mean_dev_ = DeviceBuffer<float>(n_);
    zero_row_dev_ = DeviceBuffer<std::uint8_t>(n_);
    bad_row_dev_ = DeviceBuffer<long long>(1);
    const long long none = -1;
    EMBGEOM_CUDA_TRY(
        cudaMemcpyAsync(bad_row_dev_.data(), &none, sizeof none, cudaMemcpyHostToDevice, stream_));
    if (opt_.accumulate_row_sums) {
        row_sum_dev_ = DeviceBuffer<long long>(n_);
        EMBGEOM_CUDA_TRY(cudaMemsetAsync(row_sum_dev_.data(), 0, row_sum_dev_.bytes(), stream_));
    }
    hist_dev_ = DeviceBuffer<unsigned long long>(opt_.hist_bins);
    EMBGEOM_CUDA_TRY(cudaMemsetAsync(hist_dev_.data(), 0, hist_dev_.bytes(), stream_));
    scalars_dev_ = DeviceBuffer<unsigned long long>(2);
    scalars_host_ = PinnedBuffer<unsigned long long>(2);
    dup_count_dev_ = DeviceBuffer<long long>(tile_);
    dup_offset_dev_ = DeviceBuffer<long long>(tile_);
    pairs_dev_ = DeviceBuffer<kn::TilePair>(pair_capacity_);

    table_dev_ = DeviceBuffer<float>(static_cast<std::size_t>(resident_ ? n_ : 2 * tile_) * d_);
    if (copy16_) {
        table16_dev_ =
            DeviceBuffer<std::uint16_t>(static_cast<std::size_t>(resident_ ? n_ : 2 * tile_) * d_);
        inv_norm_dev_ = DeviceBuffer<double>(n_);
    }
    // Centred rows are not the rows as stored: no raw product for them.
    check_raw_ = copy16_ && !opt_.center;
    if (check_raw_) {
        exact_flags_dev_ = DeviceBuffer<unsigned>(1);
        EMBGEOM_CUDA_TRY(
            cudaMemsetAsync(exact_flags_dev_.data(), 0, exact_flags_dev_.bytes(), stream_));
    }
    tile_dev_ = DeviceBuffer<float>(static_cast<std::size_t>(tile_) * tile_);
    if (transposed_) tile_t_dev_ = DeviceBuffer<float>(static_cast<std::size_t>(tile_) * tile_);
    // Every block the pass will load, in load order, read ahead into two pinned buffers by the
    // prefetcher's thread: reading (HDF5, conversion) overlaps the copies and the tiles.
    std::vector<RowBlock> schedule;
    for (std::int64_t first = 0; first < n_; first += tile_)
        schedule.push_back({first, std::min(tile_, n_ - first)});  // pass 0
    // Streaming loads every block I (its row means are computed there), then the blocks J of
    // this engine's tile pairs.
    std::int64_t tile_pair = 0;
    if (!resident_)
        for (std::int64_t i0 = 0; i0 < n_; i0 += tile_)
            for (std::int64_t j0 = i0; j0 < n_; j0 += tile_)
                if (owns(tile_pair++) || j0 == i0)
                    schedule.push_back({j0, std::min(tile_, n_ - j0)});  // I, then each J
    if (!held_)
        prefetch_ = std::make_unique<BlockPrefetcher>(source_, std::move(schedule), 2, &pinned_);
    if (opt_.matrix) sink_tile_ = PinnedBuffer<float>(static_cast<std::size_t>(tile_) * tile_);
    sync();
}

// Normalising in place overwrites the raw rows, so everything that needs them happens first: the
// 16-bit exactness check (check, pass 0) and the raw 16-bit copy into dst16 (format, or the
// tracker's choice for this block when tracker is given).
void Engine::load_block(std::int64_t first, std::int64_t count, float* dst, bool check,
                        engine::Raw16Tracker* tracker, Raw16Format format, std::uint16_t* dst16) {
    BlockPrefetcher::Lease rows;
    if (held_) {
        if (d_ > 0)
            EMBGEOM_CUDA_TRY(cudaMemcpyAsync(dst, held_->row(first), sizeof(float) * count * d_,
                                             cudaMemcpyDeviceToDevice, stream_));
    } else {
        rows = prefetch_->next();
        EMBGEOM_EXPECTS(rows.block.first == first && rows.block.count == count,
                        "blocks loaded in the prefetcher's order");
        if (d_ > 0)
            EMBGEOM_CUDA_TRY(cudaMemcpyAsync(dst, rows.data, sizeof(float) * count * d_,
                                             cudaMemcpyHostToDevice, stream_));
    }
    if (check) {
        kn::launch_exact16_check(dst, count, d_, d_, valid_dev_.data() + first,
                                 exact_flags_dev_.data(), stream_);
        EMBGEOM_CHECK_LAUNCH(stream_);
    }
    if (tracker) format = tracker->next_block(first, count, read_exactness());
    if (format != Raw16Format::kNone) {
        kn::launch_convert_rows(
            dst, count, d_, d_, valid_dev_.data() + first,
            format == Raw16Format::kBf16 ? kn::Half16::kBf16 : kn::Half16::kFp16, dst16, d_,
            inv_norm_dev_.data() + first, stream_);
        EMBGEOM_CHECK_LAUNCH(stream_);
    }
    kn::launch_normalize_rows(dst, count, d_, d_, valid_dev_.data() + first, center_dev_.data(),
                              zero_row_dev_.data() + first, first, bad_row_dev_.data(), stream_);
    EMBGEOM_CHECK_LAUNCH(stream_);
    if (held_) return;  // nothing to give back: the stream orders the rest
    sync();             // the copy is done: the buffer may take the next block
    prefetch_->release(rows);
}

engine::RawExactness Engine::read_exactness() {
    unsigned flags = kn::kNotBf16Exact | kn::kNotFp16Exact;
    if (check_raw_) {
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(&flags, exact_flags_dev_.data(), sizeof flags,
                                         cudaMemcpyDeviceToHost, stream_));
        sync();
    }
    return {(flags & kn::kNotBf16Exact) == 0, (flags & kn::kNotFp16Exact) == 0};
}

// After pass 0: the policy picks the product, and the device buffers are made to match it.
void Engine::resolve_path(const engine::Raw16Tracker* tracker) {
    path_ = engine::resolve_precision(opt_.precision, read_exactness(), {copy16_, candidates_},
                                      opt_.k, n_valid_);
    if (engine::is_raw16(path_) && resident_) {
        EMBGEOM_EXPECTS(tracker && tracker->final_format() == engine::raw_format(path_),
                        "pass 0 encoded the raw rows as the policy's format");
        kn::launch_bf16_to_fp16(table16_dev_.data(), tracker->bf16_prefix_to_reencode() * d_,
                                stream_);
        EMBGEOM_CHECK_LAUNCH(stream_);
    }
    if (path_ == PrecisionPath::kBf16 || path_ == PrecisionPath::kFp16) {
        // Re-scoring plans are resident: the whole normalised table converts at once.
        kn::launch_convert_rows(
            table_dev_.data(), n_, d_, d_, nullptr,
            path_ == PrecisionPath::kBf16 ? kn::Half16::kBf16 : kn::Half16::kFp16,
            table16_dev_.data(), d_, nullptr, stream_);
        EMBGEOM_CHECK_LAUNCH(stream_);
    }
    if (!engine::uses_copy16(path_)) table16_dev_ = DeviceBuffer<std::uint16_t>();
    if (!engine::is_raw16(path_)) inv_norm_dev_ = DeviceBuffer<double>();
    const bool rescored = engine::is_rescored(path_);
    kc_ = rescored ? static_cast<int>(
                         std::max<std::int64_t>(k_, engine::candidate_count(opt_.k, n_valid_)))
                   : k_;
    // A plan for K' lists that the policy did not use needs no transposed tile after all.
    if (kc_ <= kn::kColFoldMaxK) tile_t_dev_ = DeviceBuffer<float>();
    dup_min_ = engine::duplicate_min(opt_.dup_threshold);
    dup_scan_min_ =
        rescored ? engine::duplicate_min(opt_.dup_threshold - engine::duplicate_margin(path_, d_))
                 : dup_min_;
    allocate_lists();
}

void Engine::allocate_lists() {
    if (kc_ == 0) return;
    top_sim_dev_ = DeviceBuffer<float>(static_cast<std::size_t>(n_) * kc_);
    top_idx_dev_ = DeviceBuffer<std::int64_t>(static_cast<std::size_t>(n_) * kc_);
    kn::launch_topk_init(top_sim_dev_.data(), top_idx_dev_.data(),
                         static_cast<std::int64_t>(n_) * kc_, stream_);
    EMBGEOM_CHECK_LAUNCH(stream_);
}

void Engine::fold_rows(const float* tile, std::int64_t rows, std::int64_t cols, std::int64_t row0,
                       std::int64_t col0, const kn::TilePairStats* pairs) {
    // Neighbour lists, row sums and (for the rows of I) the pair statistics from one read of the
    // tile.
    kn::launch_tile_row_fold(
        tile, cols, rows, cols, row0, col0, valid_dev_.data(),
        kc_ > 0 ? top_sim_dev_.data() : nullptr, kc_ > 0 ? top_idx_dev_.data() : nullptr, kc_,
        opt_.accumulate_row_sums ? row_sum_dev_.data() : nullptr, pairs, stream_);
    EMBGEOM_CHECK_LAUNCH(stream_);
}

// C = the tile's cosines in the path's precision. Every path writes float32 C, so the fold, the
// sink and the row means do not change with the precision.
void Engine::tile_product(std::int64_t i0, std::int64_t ti, const float* a,
                          const std::uint16_t* a16, std::int64_t j0, std::int64_t tj,
                          const float* b, const std::uint16_t* b16) {
    // Row-major C[ti x tj] = A B^T is column-major C^T = B A^T: swap the operands (faiss).
    const float one = 1.0f, zero = 0.0f;
    const int m = static_cast<int>(ti), n = static_cast<int>(tj), k = static_cast<int>(d_);
    if (k == 0) {
        EMBGEOM_CUDA_TRY(cudaMemsetAsync(tile_dev_.data(), 0, sizeof(float) * ti * tj, stream_));
        return;
    }
    switch (path_) {
        case PrecisionPath::kExact:
            EMBGEOM_CUBLAS_TRY(cublas_api().cublasSgemm(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k,
                                                        &one, b, k, a, k, &zero, tile_dev_.data(),
                                                        n));
            return;
        case PrecisionPath::kTf32:
            EMBGEOM_CUBLAS_TRY(cublas_api().cublasGemmEx(
                cublas_, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, b, CUDA_R_32F, k, a, CUDA_R_32F,
                k, &zero, tile_dev_.data(), CUDA_R_32F, n, CUBLAS_COMPUTE_32F_FAST_TF32,
                CUBLAS_GEMM_DEFAULT));
            return;
        default:
            break;
    }
    // 16-bit inputs, float32 accumulation and output. For the raw paths the products of stored
    // values are exact and the norms are applied afterwards.
    const bool bf16 = path_ == PrecisionPath::kBf16 || path_ == PrecisionPath::kBf16Raw;
    const cudaDataType type = bf16 ? CUDA_R_16BF : CUDA_R_16F;
    EMBGEOM_CUBLAS_TRY(cublas_api().cublasGemmEx(
        cublas_, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, b16, type, k, a16, type, k, &zero,
        tile_dev_.data(), CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (engine::is_raw16(path_)) {
        kn::launch_scale_tile(tile_dev_.data(), tj, ti, tj, inv_norm_dev_.data() + i0,
                              inv_norm_dev_.data() + j0, stream_);
        EMBGEOM_CHECK_LAUNCH(stream_);
    }
}

void Engine::process_tile(std::int64_t i0, std::int64_t ti, const float* a,
                          const std::uint16_t* a16, std::int64_t j0, std::int64_t tj,
                          const float* b, const std::uint16_t* b16) {
    tile_product(i0, ti, a, a16, j0, tj, b, b16);
    gflop_ +=
        2.0 * static_cast<double>(ti) * static_cast<double>(tj) * static_cast<double>(d_) * 1e-9;

    // Each pair gets one float, used by both of its rows, the histogram and the sink: the upper
    // triangle of a diagonal tile (mirrored down), and C itself on an off-diagonal tile, where
    // the rows of J read it from an exact transpose.
    if (i0 == j0) {
        kn::launch_mirror_upper(tile_dev_.data(), tj, ti, stream_);
        EMBGEOM_CHECK_LAUNCH(stream_);
    }
    // CSLS: scores with the lower index's radius first keep the tile symmetric, so both rows of
    // a pair (and the transpose below) see one float per pair, as on the CPU.
    if (csls_radius_) {
        kn::launch_csls_scores(tile_dev_.data(), tj, ti, tj, i0, j0, radius_dev_.data(), stream_);
        EMBGEOM_CHECK_LAUNCH(stream_);
    }
    // The histogram, cos^2 and duplicate counts of the pairs (none in CSLS mode) are counted by
    // the fold of the rows of I, in the same read of the tile as their lists.
    kn::TilePairStats pairs;
    if (!csls_radius_) {
        EMBGEOM_CUDA_TRY(cudaMemsetAsync(scalars_dev_.data(), 0, scalars_dev_.bytes(), stream_));
        pairs.hist_bins = opt_.hist_bins;
        pairs.hist_scale = 0.5f * static_cast<float>(opt_.hist_bins);
        pairs.hist = hist_dev_.data();
        pairs.cos_sq_fixed = scalars_dev_.data();
        pairs.dup_min = dup_scan_min_;
        pairs.row_dup_count = dup_count_dev_.data();
        pairs.dup_total = scalars_dev_.data() + 1;
    }
    fold_rows(tile_dev_.data(), ti, tj, i0, j0, csls_radius_ ? nullptr : &pairs);
    // The rows of J: their lists and sums fold the columns of C in place (kernels/tile_col_fold);
    // lists longer than its registers hold fold an exact transpose instead.
    if (i0 != j0 && (kc_ > 0 || opt_.accumulate_row_sums)) {
        if (kc_ <= kn::kColFoldMaxK) {
            kn::launch_tile_col_fold(
                tile_dev_.data(), tj, ti, tj, i0, j0, valid_dev_.data(),
                kc_ > 0 ? top_sim_dev_.data() : nullptr, kc_ > 0 ? top_idx_dev_.data() : nullptr,
                kc_, opt_.accumulate_row_sums ? row_sum_dev_.data() : nullptr, stream_);
            EMBGEOM_CHECK_LAUNCH(stream_);
        } else {
            EMBGEOM_EXPECTS(tile_t_dev_.data() != nullptr, "the plan holds a transposed tile");
            kn::launch_transpose(tile_dev_.data(), ti, tj, tj, tile_t_dev_.data(), ti, stream_);
            EMBGEOM_CHECK_LAUNCH(stream_);
            fold_rows(tile_t_dev_.data(), tj, ti, j0, i0, nullptr);
        }
    }
    if (csls_radius_) return;  // no histogram, cos^2, duplicates or matrix of scores

    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(scalars_host_.data(), scalars_dev_.data(),
                                     scalars_dev_.bytes(), cudaMemcpyDeviceToHost, stream_));
    sync();
    cos_sq_fixed_ += scalars_host_.data()[0];
    // When re-scoring, tile_dups counts candidates; collect_duplicates counts the pairs that pass.
    const unsigned long long tile_dups = scalars_host_.data()[1];
    const bool rescored = engine::is_rescored(path_);
    if (!rescored) dup_total_ += tile_dups;
    if (tile_dups > 0 && (opt_.max_dup_pairs > 0 || rescored))
        collect_duplicates(i0, ti, a, j0, tj, b, static_cast<long long>(tile_dups));

    if (opt_.matrix) {
        kn::launch_mask_invalid(tile_dev_.data(), tj, ti, tj, i0, j0, valid_dev_.data(), stream_);
        EMBGEOM_CHECK_LAUNCH(stream_);
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(sink_tile_.data(), tile_dev_.data(),
                                         sizeof(float) * ti * tj, cudaMemcpyDeviceToHost, stream_));
        sync();
        opt_.matrix->write_tile(i0, j0, MatrixView<const float>(sink_tile_.data(), ti, tj, tj));
    }
}

// Keeps, over all tiles, the max_dup_pairs smallest pairs by (i, j). Within a tile the kernel
// numbers pairs in (i, j) order, so only the tile's first max_dup_pairs can survive. When
// re-scoring, the kernel's pairs are candidates: they are re-scored from the normalised rows (a,
// b) and read in order until max_dup_pairs + 1 pass, one more than can be kept, which is enough
// for dup_total_ > max_dup_pairs to say whether the list was cut.
void Engine::collect_duplicates(std::int64_t i0, std::int64_t ti, const float* a, std::int64_t j0,
                                std::int64_t tj, const float* b, long long tile_total) {
    std::vector<long long> counts(ti), offsets(ti);
    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(counts.data(), dup_count_dev_.data(), sizeof(long long) * ti,
                                     cudaMemcpyDeviceToHost, stream_));
    sync();
    long long running = 0;
    for (std::int64_t r = 0; r < ti; ++r) {
        offsets[r] = running;
        running += counts[r];
    }
    EMBGEOM_EXPECTS(running == tile_total, "duplicate counts of a tile add up");
    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(dup_offset_dev_.data(), offsets.data(), sizeof(long long) * ti,
                                     cudaMemcpyHostToDevice, stream_));

    const bool rescored = engine::is_rescored(path_);
    const long long wanted =
        rescored ? tile_total : std::min<long long>(tile_total, opt_.max_dup_pairs);
    long long passed = 0;
    std::vector<kn::TilePair> got;
    for (long long first = 0; first < wanted && passed <= opt_.max_dup_pairs;
         first += pair_capacity_) {
        const long long count = std::min<long long>(pair_capacity_, wanted - first);
        kn::launch_tile_dup_write(tile_dev_.data(), tj, ti, tj, i0, j0, valid_dev_.data(),
                                  dup_scan_min_, dup_count_dev_.data(), dup_offset_dev_.data(),
                                  first, count, pairs_dev_.data(), stream_);
        EMBGEOM_CHECK_LAUNCH(stream_);
        if (rescored) {
            kn::launch_rescore_pairs(a, i0, b, j0, d_, d_, pairs_dev_.data(), count, stream_);
            EMBGEOM_CHECK_LAUNCH(stream_);
        }
        got.resize(count);
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(got.data(), pairs_dev_.data(),
                                         sizeof(kn::TilePair) * count, cudaMemcpyDeviceToHost,
                                         stream_));
        sync();
        for (const kn::TilePair& p : got) {
            if (rescored && !(p.cosine >= dup_min_)) continue;
            if (passed++ <= opt_.max_dup_pairs)
                duplicates_.push_back(DuplicatePair{p.i, p.j, p.cosine});
        }
    }
    if (rescored) dup_total_ += static_cast<unsigned long long>(passed);

    const auto by_pair = [](const DuplicatePair& x, const DuplicatePair& y) {
        return x.i != y.i ? x.i < y.i : x.j < y.j;
    };
    const auto keep = static_cast<std::size_t>(opt_.max_dup_pairs);
    if (duplicates_.size() > keep) {
        std::nth_element(duplicates_.begin(), duplicates_.begin() + keep, duplicates_.end(),
                         by_pair);
        duplicates_.resize(keep);
    }
}

void Engine::finish(AllPairsResult& out) {
    std::vector<unsigned long long> hist(opt_.hist_bins);
    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(hist.data(), hist_dev_.data(), hist_dev_.bytes(),
                                     cudaMemcpyDeviceToHost, stream_));
    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(out.row_mean.data(), row_mean_dev_.data(), sizeof(float) * n_,
                                     cudaMemcpyDeviceToHost, stream_));
    const bool rescored = engine::is_rescored(path_);
    if (rescored && kc_ > 0) {
        kn::launch_rescore_lists(table_dev_.data(), n_, d_, d_, top_idx_dev_.data(), kc_,
                                 top_sim_dev_.data(), stream_);
        EMBGEOM_CHECK_LAUNCH(stream_);
    }
    std::vector<float> top_sim;
    std::vector<std::int64_t> top_idx;
    if (kc_ > 0) {
        top_sim.resize(static_cast<std::size_t>(n_) * kc_);
        top_idx.resize(static_cast<std::size_t>(n_) * kc_);
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(top_sim.data(), top_sim_dev_.data(), top_sim_dev_.bytes(),
                                         cudaMemcpyDeviceToHost, stream_));
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(top_idx.data(), top_idx_dev_.data(), top_idx_dev_.bytes(),
                                         cudaMemcpyDeviceToHost, stream_));
    }
    std::vector<long long> row_sums;
    if (opt_.accumulate_row_sums) {
        row_sums.resize(n_);
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(row_sums.data(), row_sum_dev_.data(), row_sum_dev_.bytes(),
                                         cudaMemcpyDeviceToHost, stream_));
    }
    sync();

    for (int b = 0; b < opt_.hist_bins; ++b) out.histogram[b] = static_cast<std::int64_t>(hist[b]);
    // Lists of re-scored candidates: the final order is by the re-scored cosines. Invalid rows
    // have empty lists and come out padded.
    if (rescored && kc_ > 0)
        engine::select_rescored_topk(top_idx.data(), top_sim.data(), n_, kc_, opt_.k,
                                     out.neighbor_index.data(), out.neighbor_sim.data());
    for (std::int64_t i = 0; i < n_; ++i) {
        if (!valid_[i]) continue;
        if (opt_.accumulate_row_sums)
            out.row_sum_tiled[i] = static_cast<double>(row_sums[i]) / engine::kCosScale;
        if (rescored) continue;
        for (int s = 0; s < kc_; ++s) {
            const std::size_t from = static_cast<std::size_t>(i) * kc_ + s;
            if (top_idx[from] == kn::kTopkEmptyIndex) break;
            const std::size_t to = static_cast<std::size_t>(i) * opt_.k + s;
            out.neighbor_index[to] = top_idx[from];
            out.neighbor_sim[to] = top_sim[from];
        }
    }

    out.pair_cos_sq_sum =
        static_cast<double>(cos_sq_fixed_) / static_cast<double>(engine::kCosSqScale);
    std::sort(duplicates_.begin(), duplicates_.end(),
              [](const DuplicatePair& x, const DuplicatePair& y) {
                  return x.i != y.i ? x.i < y.i : x.j < y.j;
              });
    out.duplicates = std::move(duplicates_);
    out.duplicates_truncated = dup_total_ > static_cast<unsigned long long>(opt_.max_dup_pairs);
    out.gflop = gflop_;
    if (partial_) {
        partial_->cos_sq_fixed = cos_sq_fixed_;
        partial_->row_sums = std::move(row_sums);
        partial_->duplicates_found = dup_total_;
    }
}

AllPairsResult Engine::run() {
    const auto start = std::chrono::steady_clock::now();
    EMBGEOM_EXPECTS(static_cast<std::int64_t>(valid_.size()) == n_, "valid has one flag per row");
    EMBGEOM_EXPECTS(
        opt_.k >= 0 && opt_.hist_bins >= 1 && opt_.max_dup_pairs >= 0 && opt_.block_rows >= 0,
        "all-pairs options in range");
    EMBGEOM_EXPECTS(d_ >= 0 && d_ <= INT_MAX, "row width fits cuBLAS");
    if (opt_.center) {
        EMBGEOM_EXPECTS(static_cast<std::int64_t>(opt_.center->size()) == d_,
                        "center has one value per column");
        for (const double c : *opt_.center) EMBGEOM_EXPECTS(std::isfinite(c), "finite center");
    }

    AllPairsResult out = engine::padded_result(n_, opt_);
    out.histogram.assign(opt_.hist_bins, 0);
    out.normalized_sum.assign(d_, 0.0);
    n_valid_ = std::count_if(valid_.begin(), valid_.end(), [](std::uint8_t v) { return v != 0; });
    out.valid_rows = n_valid_;

    if (n_ > 0) {
        const std::int64_t kept =
            std::min<std::int64_t>(opt_.k, std::max<std::int64_t>(n_valid_ - 1, 0));
        if (kept > kn::kTopkMaxK)
            throw ResourceError("--topk " + std::to_string(opt_.k) +
                                ": the CUDA backend keeps at most " +
                                std::to_string(kn::kTopkMaxK) +
                                " neighbours per row; lower --topk or use --backend cpu");
        k_ = static_cast<int>(kept);
        pair_capacity_ = device_pair_capacity(opt_);
        // Phases end at points where the stream is synchronised anyway.
        auto mark = start;
        const auto phase = [&](const char* name) {
            const auto now = std::chrono::steady_clock::now();
            out.phase_seconds.emplace_back(name, std::chrono::duration<double>(now - mark).count());
            mark = now;
        };
        plan_memory();
        allocate();
        phase("set-up");

        // Pass 0: S = sum of the normalised valid rows, in row order (bitwise the same for any
        // block size); a resident table is normalised into place here, after its raw rows went
        // into the 16-bit copy (as the tracker decides, block by block) when a raw path may run.
        std::optional<engine::Raw16Tracker> tracker;
        if (check_raw_ && resident_)
            tracker.emplace(opt_.precision != Precision::kFp16, opt_.precision != Precision::kBf16);
        for (std::int64_t first = 0; first < n_; first += tile_) {
            const std::int64_t count = std::min(tile_, n_ - first);
            float* dst = resident_ ? table_dev_.data() + first * d_ : table_dev_.data();
            std::uint16_t* dst16 = tracker ? table16_dev_.data() + first * d_ : nullptr;
            load_block(first, count, dst, check_raw_, tracker ? &*tracker : nullptr,
                       Raw16Format::kNone, dst16);
            kn::launch_column_sums(dst, count, d_, d_, valid_dev_.data() + first, sum_dev_.data(),
                                   stream_);
            EMBGEOM_CHECK_LAUNCH(stream_);
        }
        long long bad_row = -1;
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(&bad_row, bad_row_dev_.data(), sizeof bad_row,
                                         cudaMemcpyDeviceToHost, stream_));
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(out.normalized_sum.data(), sum_dev_.data(),
                                         sum_dev_.bytes(), cudaMemcpyDeviceToHost, stream_));
        sync();
        if (bad_row >= 0)
            throw ResourceError("cuda all-pairs: row " + std::to_string(bad_row) + " of " +
                                source_.describe() +
                                " is marked valid but holds non-finite values");
        if (resident_) {
            kn::launch_row_means(table_dev_.data(), n_, d_, d_, valid_dev_.data(),
                                 zero_row_dev_.data(), sum_dev_.data(), n_valid_,
                                 row_mean_dev_.data(), stream_);
            EMBGEOM_CHECK_LAUNCH(stream_);
        }
        resolve_path(tracker ? &*tracker : nullptr);
        phase("load");

        // Upper-triangle tiles, block row by block row. Streaming keeps block I in the first
        // half of table_dev_ (and of table16_dev_) and loads each block J into the second half;
        // a streamed raw path encodes every block again as it is loaded.
        const Raw16Format reload16 = resident_ ? Raw16Format::kNone : engine::raw_format(path_);
        const bool has16 = engine::uses_copy16(path_);
        const std::int64_t tiles = (n_ + tile_ - 1) / tile_;
        std::int64_t tile_pair = 0, tiles_done = 0;
        float* const block_i = table_dev_.data();
        float* const block_j = table_dev_.data() + (resident_ ? 0 : tile_ * d_);
        std::uint16_t* const block16_i = has16 ? table16_dev_.data() : nullptr;
        std::uint16_t* const block16_j = has16 ? table16_dev_.data() + tile_ * d_ : nullptr;
        for (std::int64_t i0 = 0; i0 < n_; i0 += tile_) {
            const std::int64_t ti = std::min(tile_, n_ - i0);
            const float* a = resident_ ? table_dev_.data() + i0 * d_ : block_i;
            const std::uint16_t* a16 = !has16      ? nullptr
                                       : resident_ ? table16_dev_.data() + i0 * d_
                                                   : block16_i;
            if (!resident_) {
                load_block(i0, ti, block_i, false, nullptr, reload16, block16_i);
                kn::launch_row_means(block_i, ti, d_, d_, valid_dev_.data() + i0,
                                     zero_row_dev_.data() + i0, sum_dev_.data(), n_valid_,
                                     row_mean_dev_.data() + i0, stream_);
                EMBGEOM_CHECK_LAUNCH(stream_);
            }
            for (std::int64_t j0 = i0; j0 < n_; j0 += tile_) {
                if (!owns(tile_pair++)) continue;
                const std::int64_t tj = std::min(tile_, n_ - j0);
                const float* b = a;
                const std::uint16_t* b16 = a16;
                if (j0 != i0) {
                    if (resident_) {
                        b = table_dev_.data() + j0 * d_;
                        b16 = has16 ? table16_dev_.data() + j0 * d_ : nullptr;
                    } else {
                        load_block(j0, tj, block_j, false, nullptr, reload16, block16_j);
                        b = block_j;
                        b16 = block16_j;
                    }
                }
                process_tile(i0, ti, a, a16, j0, tj, b, b16);
                ++tiles_done;
                if (opt_.progress) opt_.progress(tiles_done, tiles * (tiles + 1) / 2);
            }
        }
        sync();
        phase("tiles");
        finish(out);
        phase("finish");
    }
    out.precision = path_;

    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
}

}  // namespace

AllPairsResult cuda_all_pairs(CudaResources& res, RowSource& source,
                              const std::vector<std::uint8_t>& valid, const AllPairsOptions& opt,
                              const DeviceTable* held) {
    DeviceScope scope(res.device());
    return Engine(res, source, valid, opt, held).run();
}

std::uint64_t all_pairs_device_budget(const AllPairsOptions& opt) {
    return opt.device_memory_budget ? opt.device_memory_budget
           : opt.memory_budget      ? opt.memory_budget
                                    : kDefaultBudget;
}

std::uint64_t all_pairs_largest_plan_bytes(std::int64_t rows, std::int64_t cols,
                                           const AllPairsOptions& opt) {
    // Engine::plan_memory's first layout at its first tile side, with every row valid (a valid
    // count can only make the lists and the candidate count smaller).
    if (rows <= 0) return 0;
    MemoryPlan p;
    p.n = rows;
    p.d = cols;
    p.bins = opt.hist_bins;
    p.row_sums = opt.accumulate_row_sums;
    p.pair_capacity = device_pair_capacity(opt);
    const std::int64_t k = std::min<std::int64_t>(opt.k, rows - 1);
    p.copy16 = may_plan_copy16(opt);
    p.k = engine::may_rescore(opt.precision)
              ? std::max<std::int64_t>(k, engine::candidate_count(opt.k, rows))
              : k;
    return p.total(first_tile_side(opt, rows), true);
}

std::uint64_t all_pairs_usable_device_bytes(CudaResources& res) {
    DeviceScope scope(res.device());
    std::size_t free_bytes = 0, total_bytes = 0;
    EMBGEOM_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    return free_bytes > kDeviceReserve ? free_bytes - kDeviceReserve : 0;
}

AllPairsResult cuda_all_pairs_share(CudaResources& res, RowSource& source,
                                    const std::vector<std::uint8_t>& valid,
                                    const AllPairsOptions& opt, const EngineShare& share,
                                    AllPairsPartial* partial, const DeviceTable* held) {
    EMBGEOM_EXPECTS(share.count >= 1 && share.index >= 0 && share.index < share.count,
                    "engine share in range");
    DeviceScope scope(res.device());
    return Engine(res, source, valid, opt, held, nullptr, share, partial).run();
}

CslsNeighbors cuda_csls_neighbors(CudaResources& res, RowSource& source,
                                  const std::vector<std::uint8_t>& valid,
                                  const std::vector<float>& radius, std::int64_t k,
                                  const AllPairsOptions& opt, const DeviceTable* held) {
    const std::int64_t V = source.rows();
    check_csls_inputs(V, valid, radius, k, opt.block_rows);  // the CPU's contract
    const std::vector<std::uint8_t> mask =
        valid.empty() ? std::vector<std::uint8_t>(static_cast<std::size_t>(V), 1) : valid;

    // Exact float32 whatever was requested (the CPU ranks exact cosines), no centre, and nothing
    // but the lists: one histogram bin, no duplicate pairs, no sink, no progress.
    AllPairsOptions o;
    o.k = k;
    o.block_rows = opt.block_rows;
    o.memory_budget = opt.memory_budget;
    o.device_memory_budget = opt.device_memory_budget;
    o.precision = Precision::kExact;
    o.hist_bins = 1;
    o.max_dup_pairs = 0;

    DeviceScope scope(res.device());
    Engine engine(res, source, mask, o, held, &radius);
    AllPairsResult r = engine.run();
    CslsNeighbors out;
    out.rows = V;
    out.k = k;
    out.index = std::move(r.neighbor_index);
    out.score = std::move(r.neighbor_sim);
    out.valid_rows = r.valid_rows;
    out.resident = engine.resident();
    return out;
}

}  // namespace embgeom
