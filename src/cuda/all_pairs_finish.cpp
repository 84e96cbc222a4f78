#include <algorithm>
#include <vector>

#include "cuda/all_pairs_engine.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/final_lists.hpp"
#include "engine/fixed_point.hpp"
#include "rescore_candidates.cuh"

namespace embgeom {

namespace kn = kernels;

void AllPairsEngine::finish(AllPairsResult& out) {
    std::vector<unsigned long long> hist(opt_.hist_bins);
    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(hist.data(), hist_dev_.data(), hist_dev_.bytes(),
                                     cudaMemcpyDeviceToHost, stream_));
    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(out.row_mean.data(), row_mean_dev_.data(), sizeof(float) * n_,
                                     cudaMemcpyDeviceToHost, stream_));
    const bool rescored = engine::is_rescored(path_);
    const bool deferred = rescored && share_.defer_rescore;
    if (rescored && !deferred && kc_ > 0) {
        kn::launch_rescore_lists(table_dev_.data(), n_, d_, d_, top_idx_dev_.data(), kc_,
                                 top_sim_dev_.data(), stream_);
        EMBGEOM_CHECK_LAUNCH(stream_);
    }
    if (deferred && kc_ > 0) {
        EMBGEOM_EXPECTS(partial_ != nullptr, "a deferred re-score hands its candidates on");
        const std::size_t slots = static_cast<std::size_t>(n_) * kc_;
        partial_->candidate_width = kc_;
        partial_->candidate_index.resize(slots);
        partial_->candidate_sim.resize(slots);
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(partial_->candidate_index.data(), top_idx_dev_.data(),
                                         top_idx_dev_.bytes(), cudaMemcpyDeviceToHost, stream_));
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(partial_->candidate_sim.data(), top_sim_dev_.data(),
                                         top_sim_dev_.bytes(), cudaMemcpyDeviceToHost, stream_));
    } else {
        // The tile buffer is free now: the final lists are picked there.
        copy_final_lists(stream_, top_idx_dev_.data(), top_sim_dev_.data(), n_, kc_, opt_.k,
                         rescored, tile_dev_.data(), tile_dev_.bytes(), out.neighbor_index.data(),
                         out.neighbor_sim.data());
    }
    std::vector<long long> row_sums;
    if (opt_.accumulate_row_sums) {
        row_sums.resize(n_);
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(row_sums.data(), row_sum_dev_.data(), row_sum_dev_.bytes(),
                                         cudaMemcpyDeviceToHost, stream_));
    }
    sync();

    for (int b = 0; b < opt_.hist_bins; ++b) out.histogram[b] = static_cast<std::int64_t>(hist[b]);
    if (opt_.accumulate_row_sums)
        for (std::int64_t i = 0; i < n_; ++i)
            if (valid_[i])
                out.row_sum_tiled[i] = static_cast<double>(row_sums[i]) / engine::kCosScale;

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
