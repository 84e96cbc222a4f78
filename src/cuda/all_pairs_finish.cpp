#include <algorithm>
#include <vector>

#include "cuda/all_pairs_engine.hpp"
#include "cuda/cuda_check.hpp"
#include "engine/candidate_rescore.hpp"
#include "engine/fixed_point.hpp"
#include "rescore_candidates.cuh"
#include "select_topk.cuh"
#include "tile_row_fold.cuh"

namespace embgeom {

namespace kn = kernels;

void AllPairsEngine::finish(AllPairsResult& out) {
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
    // The lists leave the device in their final form where they can: a warp per row keeps the
    // best k (re-scored candidates in their new order, exact lists as they are) in the tile
    // buffer, which no tile needs any more, so [n, k] crosses instead of [n, K'] and the host has
    // nothing to sort. Otherwise the host selects (engine::select_rescored_topk, the reference).
    const std::int64_t width = opt_.k;
    const std::uint64_t final_bytes =
        static_cast<std::uint64_t>(n_) * width * (sizeof(std::int64_t) + sizeof(float));
    const bool select_on_device = kc_ > 0 &&
                                  std::min<std::int64_t>(width, kc_) <= kn::kSelectTopkMaxK &&
                                  final_bytes <= tile_dev_.bytes();
    std::vector<float> top_sim;
    std::vector<std::int64_t> top_idx;
    if (select_on_device) {
        auto* index = reinterpret_cast<std::int64_t*>(tile_dev_.data());
        auto* sims = reinterpret_cast<float*>(index + n_ * width);
        kn::launch_select_topk(top_idx_dev_.data(), top_sim_dev_.data(), n_, kc_, width, index,
                               sims, stream_);
        EMBGEOM_CHECK_LAUNCH(stream_);
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(out.neighbor_index.data(), index,
                                         sizeof(std::int64_t) * n_ * width, cudaMemcpyDeviceToHost,
                                         stream_));
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(out.neighbor_sim.data(), sims, sizeof(float) * n_ * width,
                                         cudaMemcpyDeviceToHost, stream_));
    } else if (kc_ > 0) {
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
    const bool host_lists = kc_ > 0 && !select_on_device;
    if (rescored && host_lists)
        engine::select_rescored_topk(top_idx.data(), top_sim.data(), n_, kc_, opt_.k,
                                     out.neighbor_index.data(), out.neighbor_sim.data());
    for (std::int64_t i = 0; i < n_; ++i) {
        if (!valid_[i]) continue;
        if (opt_.accumulate_row_sums)
            out.row_sum_tiled[i] = static_cast<double>(row_sums[i]) / engine::kCosScale;
        if (rescored || !host_lists) continue;
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

}  // namespace embgeom
