#include "cuda/final_lists.hpp"

#include <algorithm>
#include <vector>

#include "cuda/cuda_check.hpp"
#include "engine/candidate_rescore.hpp"
#include "select_topk.cuh"
#include "tile_row_fold.cuh"

namespace embgeom {

namespace kn = kernels;

void copy_final_lists(cudaStream_t stream, const std::int64_t* index_dev, const float* sim_dev,
                      std::int64_t n, int kc, std::int64_t width, bool rescored, void* scratch,
                      std::size_t scratch_bytes, std::int64_t* out_index, float* out_sim) {
    if (n <= 0 || kc <= 0 || width <= 0) return;
    const std::size_t final_bytes =
        static_cast<std::size_t>(n) * width * (sizeof(std::int64_t) + sizeof(float));
    if (std::min<std::int64_t>(width, kc) <= kn::kSelectTopkMaxK && scratch &&
        final_bytes <= scratch_bytes) {
        auto* index = static_cast<std::int64_t*>(scratch);
        auto* sims = reinterpret_cast<float*>(index + n * width);
        kn::launch_select_topk(index_dev, sim_dev, n, kc, width, index, sims, stream);
        EMBGEOM_CHECK_LAUNCH(stream);
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(out_index, index, sizeof(std::int64_t) * n * width,
                                         cudaMemcpyDeviceToHost, stream));
        EMBGEOM_CUDA_TRY(cudaMemcpyAsync(out_sim, sims, sizeof(float) * n * width,
                                         cudaMemcpyDeviceToHost, stream));
        EMBGEOM_CUDA_TRY(cudaStreamSynchronize(stream));
        return;
    }
    const std::size_t slots = static_cast<std::size_t>(n) * kc;
    std::vector<std::int64_t> index(slots);
    std::vector<float> sims(slots);
    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(index.data(), index_dev, sizeof(std::int64_t) * slots,
                                     cudaMemcpyDeviceToHost, stream));
    EMBGEOM_CUDA_TRY(cudaMemcpyAsync(sims.data(), sim_dev, sizeof(float) * slots,
                                     cudaMemcpyDeviceToHost, stream));
    EMBGEOM_CUDA_TRY(cudaStreamSynchronize(stream));
    if (rescored) {
        engine::select_rescored_topk(index.data(), sims.data(), n, kc, width, out_index, out_sim);
        return;
    }
    // Sorted lists: their first min(width, kc) slots, up to the first empty one (out is padded).
    const int keep = static_cast<int>(std::min<std::int64_t>(width, kc));
    for (std::int64_t i = 0; i < n; ++i)
        for (int s = 0; s < keep; ++s) {
            const std::size_t from = static_cast<std::size_t>(i) * kc + s;
            if (index[from] == kn::kTopkEmptyIndex) break;
            out_index[i * width + s] = index[from];
            out_sim[i * width + s] = sims[from];
        }
}

}  // namespace embgeom
