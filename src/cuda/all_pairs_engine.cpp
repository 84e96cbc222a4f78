#include "cuda/all_pairs_engine.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <optional>

#include "column_sums.cuh"
#include "convert_rows.cuh"
#include "cuda/cuda_check.hpp"
#include "engine/device_memory_plan.hpp"
#include "engine/duplicate_list.hpp"
#include "engine/padded_result.hpp"
#include "exact16_check.cuh"
#include "normalize_rows.cuh"
#include "row_means.cuh"
#include "tile_col_fold.cuh"
#include "tile_row_fold.cuh"

namespace embgeom {

namespace kn = kernels;

using engine::Raw16Format;

static_assert(kn::kTopkMaxK == engine::kMaxCandidates,
              "the precision policy sizes candidate lists by the top-K kernel's limit");
static_assert(sizeof(kn::TilePair) == engine::kDevicePairBytes &&
                  kn::kColFoldMaxK == engine::kColumnFoldMaxSlots,
              "the memory plan counts the kernels' sizes");

void AllPairsEngine::plan_memory() {
    std::size_t free_bytes = 0, total_bytes = 0;
    EMBGEOM_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    engine::DeviceBudget budget;
    budget.asked = engine::device_budget(opt_);
    budget.free_bytes = free_bytes;
    budget.usable = share_.usable_bytes                   ? *share_.usable_bytes
                    : free_bytes > engine::kDeviceReserve ? free_bytes - engine::kDeviceReserve
                                                          : 0;
    engine::DevicePlanRequest req;
    req.rows = n_;
    req.cols = d_;
    req.k = k_;
    req.candidate_width = engine::candidate_count(opt_.k, n_valid_);
    req.csls = csls_radius_ != nullptr;
    const engine::DevicePlanChoice c = engine::choose_device_plan(req, opt_, budget);
    tile_ = c.tile;
    resident_ = c.resident;
    copy16_ = c.copy16;
    candidates_ = c.candidates;
    transposed_ = c.transposed;
}

void AllPairsEngine::allocate() {
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
void AllPairsEngine::load_block(std::int64_t first, std::int64_t count, float* dst, bool check,
                                engine::Raw16Tracker* tracker, Raw16Format format,
                                std::uint16_t* dst16) {
    BlockPrefetcher::Lease rows;
    if (held_) {
        held_->copy_rows(first, count, dst, stream_);
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

engine::RawExactness AllPairsEngine::read_exactness() {
    unsigned flags = kn::kNotBf16Exact | kn::kNotFp16Exact;
    if (check_raw_) {
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(&flags, exact_flags_dev_.data(), sizeof flags,
                                         cudaMemcpyDeviceToHost, stream_));
        sync();
    }
    return {(flags & kn::kNotBf16Exact) == 0, (flags & kn::kNotFp16Exact) == 0};
}

// After pass 0: the policy picks the product, and the device buffers are made to match it.
void AllPairsEngine::resolve_path(const engine::Raw16Tracker* tracker) {
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

void AllPairsEngine::allocate_lists() {
    if (kc_ == 0) return;
    top_sim_dev_ = DeviceBuffer<float>(static_cast<std::size_t>(n_) * kc_);
    top_idx_dev_ = DeviceBuffer<std::int64_t>(static_cast<std::size_t>(n_) * kc_);
    kn::launch_topk_init(top_sim_dev_.data(), top_idx_dev_.data(),
                         static_cast<std::int64_t>(n_) * kc_, stream_);
    EMBGEOM_CHECK_LAUNCH(stream_);
}

AllPairsResult AllPairsEngine::run() {
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
        pair_capacity_ = engine::device_pair_capacity(opt_);
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

}  // namespace embgeom
